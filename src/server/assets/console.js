/* console.js: live updates for the proctor's board (ES5, no framework).
 * Without JavaScript the board refreshes itself every 5 s (<noscript> meta refresh);
 * with it, an EventSource receives the rows every 2 s and updates the cells in place.
 * When a row's status changes (its action buttons differ), the page reloads once. */
(function () {
  'use strict';
  var board = document.getElementById('board');
  if (!board || !window.EventSource) { return; }
  var url = board.getAttribute('data-events');

  function mmss(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }
  function hhmmss(t) {
    var d = new Date(t);
    function two(n) { return (n < 10 ? '0' : '') + n; }
    return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
  }
  function cell(tr, cls) { return tr.querySelector('td.' + cls); }
  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }

  var src = new EventSource(url);
  src.onmessage = function (ev) {
    var data;
    try { data = JSON.parse(ev.data); } catch (e) { return; }
    var rows = data.rows || [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var tr = board.querySelector('tr[data-p="' + r.participant + '"]');
      if (!tr) { continue; }
      if (tr.getAttribute('data-status') !== r.status) {
        src.close();
        window.location.reload();
        return;
      }
      setText(cell(tr, 'c-pc'), r.pc);
      setText(cell(tr, 'c-ans'), r.answered + '/' + r.items);
      setText(cell(tr, 'c-doubt'), String(r.doubtful));
      setText(cell(tr, 'c-unsaved'), String(r.unsaved));
      var u = cell(tr, 'c-unsaved');
      if (u) { u.className = 'c-unsaved' + (r.unsaved > 0 ? ' warn' : ''); }
      setText(cell(tr, 'c-rem'), r.counting ? mmss(r.remaining_ms) : '');
      setText(cell(tr, 'c-seen'), r.last_seen_ms ? hhmmss(r.last_seen_ms) : '');
      tr.className = r.status + (r.silent ? ' silent' : '');
    }
  };
})();
