// OneKey front end: app.js
