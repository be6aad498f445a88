/* tuk lab readiness check (/cek). ES5 only: runs on Firefox 52 and Chrome 49.
 * Fills the hidden fields of the form: es5, cookies, local storage, screen size, clock
 * offset from the server, round-trip time (median of 10 pings) and download speed, then
 * lets the technician submit. Without JavaScript the form posts as it is. */
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var form = $('cek');
  if (!form) { return; }
  var progress = $('progress');
  var go = $('go');
  var en = (document.documentElement.lang || '').indexOf('en') === 0;
  function say(id, eng) { progress.textContent = en ? eng : id; }

  $('js').value = '1';
  $('es5').value = (typeof JSON === 'object' && typeof Array.prototype.forEach === 'function' &&
    typeof Function.prototype.bind === 'function' && typeof XMLHttpRequest !== 'undefined' &&
    typeof Object.keys === 'function') ? '1' : '0';
  $('ck').value = navigator.cookieEnabled ? '1' : '0';
  var ls = '0';
  try {
    window.localStorage.setItem('tuk_cek', '1');
    if (window.localStorage.getItem('tuk_cek') === '1') { ls = '1'; }
    window.localStorage.removeItem('tuk_cek');
  } catch (e) { ls = '0'; }
  $('ls').value = ls;
  $('sw').value = String(window.screen ? window.screen.width : 0);
  $('sh').value = String(window.screen ? window.screen.height : 0);
  var remembered = '';
  try { remembered = window.localStorage.getItem('tuk_pc') || ''; } catch (e2) { remembered = ''; }
  if (!$('pc').value && remembered) { $('pc').value = remembered; }

  go.disabled = true;
  say('Mengukur jaringan…', 'Measuring the network…');

  function get(url, type, done) {
    var x = new XMLHttpRequest();
    x.open('GET', url, true);
    if (type) { x.responseType = type; }
    x.timeout = 15000;
    x.onload = function () { done(x.status === 200 ? x : null); };
    x.onerror = x.ontimeout = function () { done(null); };
    x.send();
  }

  var rtts = [];
  var offsets = [];
  function ping(i) {
    if (i >= 10) { return download(); }
    var t0 = Date.now();
    get('/cek/ping?i=' + i + '&r=' + t0, '', function (x) {
      var t1 = Date.now();
      if (x) {
        rtts.push(t1 - t0);
        try {
          var server = JSON.parse(x.responseText).t;
          offsets.push(Math.round((t0 + t1) / 2 - server));
        } catch (e) { /* ignore */ }
      }
      ping(i + 1);
    });
  }
  function median(a) {
    if (!a.length) { return null; }
    var s = a.slice().sort(function (p, q) { return p - q; });
    return s[Math.floor(s.length / 2)];
  }
  function download() {
    var t0 = Date.now();
    get('/cek/unduh?kb=1024&r=' + t0, 'arraybuffer', function (x) {
      var ms = Math.max(Date.now() - t0, 1);
      if (x && x.response) {
        var bits = x.response.byteLength * 8;
        $('mbps').value = (bits / ms / 1000).toFixed(2);
      }
      finish();
    });
  }
  function finish() {
    var r = median(rtts);
    var o = median(offsets);
    if (r !== null) { $('rtt').value = String(r); }
    if (o !== null) { $('off').value = String(o); }
    go.disabled = false;
    say('Pengukuran selesai. Tekan tombol untuk mendaftarkan komputer ini.',
      'Measured. Press the button to register this PC.');
  }
  form.onsubmit = function () {
    try { window.localStorage.setItem('tuk_pc', $('pc').value); } catch (e) { /* ignore */ }
    return true;
  };
  ping(0);
}());
