// The password check, the Pwned Passwords way: the password is hashed here
// with WebCrypto, only the first five hex characters of its SHA-1 go to the
// server (/range/), and the match is made here. The input has no name, so
// the form never submits it anywhere, with or without this script.
'use strict';
(function () {
  var form = document.getElementById('pw-form');
  if (!form) { return; }
  var input = document.getElementById('pw');
  var out = document.getElementById('pw-result');
  function show(text, kind) { out.textContent = text; out.className = kind || ''; }
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var password = input.value;
    if (!password) { show('Type a password first.', 'bad'); return; }
    if (!window.crypto || !window.crypto.subtle) {
      show('This browser cannot hash the password here (WebCrypto needs HTTPS or localhost).', 'bad');
      return;
    }
    show('Checking…');
    window.crypto.subtle.digest('SHA-1', new TextEncoder().encode(password)).then(function (digest) {
      var hex = Array.prototype.map.call(new Uint8Array(digest), function (b) {
        return ('0' + b.toString(16)).slice(-2);
      }).join('').toUpperCase();
      var prefix = hex.slice(0, 5);
      var suffix = hex.slice(5);
      return fetch('/range/' + prefix, { headers: { 'Add-Padding': 'true' }, credentials: 'omit', cache: 'no-store' })
        .then(function (response) {
          if (!response.ok) { throw new Error('status ' + response.status); }
          return response.text();
        })
        .then(function (body) {
          var count = 0;
          body.split('\n').some(function (line) {
            var parts = line.trim().split(':');
            if (parts[0] === suffix) { count = parseInt(parts[1], 10) || 0; return true; }
            return false;
          });
          if (count > 0) {
            show('This password has been seen ' + count.toLocaleString('en') + ' times in breaches. Do not use it.', 'bad');
          } else {
            show('This password was not found in any breach held here.', 'good');
          }
        });
    }).catch(function () { show('The check failed; try again.', 'bad'); });
  });
}());
