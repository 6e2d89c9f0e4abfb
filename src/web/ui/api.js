// OneKey front end: api.js
