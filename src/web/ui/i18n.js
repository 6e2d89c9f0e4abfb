// OneKey front end: i18n.js
