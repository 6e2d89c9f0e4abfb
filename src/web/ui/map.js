// OneKey front end: map.js
