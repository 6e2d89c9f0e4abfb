// OneKey front end: console.js
