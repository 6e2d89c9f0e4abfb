// OneKey front end: charts.js
