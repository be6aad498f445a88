/* console.js: live updates for the proctor's board (ES5, no framework).
 * Without JavaScript the board refreshes itself every 5 s (<noscript> meta refresh); it
 * holds no text field, so nothing typed is lost. With it, an EventSource receives the rows
 * every 2 s and every cell, the session banner, the counts and the session actions are
 * updated in place: the page never reloads (issue 13). */
(function () {
  'use strict';
  var board = document.getElementById('board');
  if (!board || !window.EventSource || !document.querySelector) { return; }
  var url = board.getAttribute('data-events');
  var csrf = board.getAttribute('data-csrf') || '';
  var post = board.getAttribute('data-post') || '';

  function hmmss(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    function two(n) { return (n < 10 ? '0' : '') + n; }
    return Math.floor(s / 3600) + ':' + two(Math.floor(s / 60) % 60) + ':' + two(s % 60);
  }
  function cell(tr, cls) { return tr.querySelector('td.' + cls); }
  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }
  function hidden(name, value) {
    var i = document.createElement('input');
    i.type = 'hidden';
    i.name = name;
    i.value = value;
    return i;
  }
  /* The "Buka kunci" buttons of a row, rebuilt when its locks change. */
  function locks(td, ips, number) {
    var old = td.querySelectorAll('form.lock'), i, f, b;
    for (i = 0; i < old.length; i++) { td.removeChild(old[i]); }
    for (i = 0; i < ips.length; i++) {
      f = document.createElement('form');
      f.className = 'inline lock';
      f.method = 'post';
      f.action = post;
      f.appendChild(hidden('csrf', csrf));
      f.appendChild(hidden('do', 'unlock'));
      f.appendChild(hidden('ip', ips[i]));
      f.appendChild(hidden('participant', number));
      b = document.createElement('button');
      b.type = 'submit';
      b.className = 'warn';
      b.title = 'login terkunci dari ' + ips[i];
      b.textContent = 'Buka kunci';
      f.appendChild(b);
      td.appendChild(f);
    }
  }
  /* Session actions shown for the current state only (data-when="open paused"). */
  function showActions(state) {
    var els = board.querySelectorAll('[data-when]'), i, when;
    for (i = 0; i < els.length; i++) {
      when = ' ' + els[i].getAttribute('data-when') + ' ';
      els[i].hidden = when.indexOf(' ' + state + ' ') < 0;
    }
  }

  var src = new EventSource(url);
  src.onmessage = function (ev) {
    var data, i, r, tr, st, u, lk;
    try { data = JSON.parse(ev.data); } catch (e) { return; }
    var banner = document.getElementById('state');
    if (banner && data.state) {
      banner.className = 'state state-' + data.state;
      setText(banner, data.banner || '');
      showActions(data.state);
    }
    setText(document.getElementById('counts'), data.counts || '');
    var who = document.querySelector('header.bar .who');
    if (who && data.session) { setText(who, data.session + ' \u00b7 ' + data.status); }
    var tok = document.querySelector('strong.tokenbig');
    if (tok && data.token) { setText(tok, data.token); }
    var rows = data.rows || [];
    for (i = 0; i < rows.length; i++) {
      r = rows[i];
      tr = board.querySelector('tr[data-p="' + r.participant + '"]');
      if (!tr) { continue; }
      tr.setAttribute('data-status', r.status);
      tr.className = r.status + (r.silent ? ' silent' : '');
      st = cell(tr, 'c-st');
      if (st) {
        setText(st.querySelector('.lbl'), r.label);
        lk = (r.locked_from || []).join(' ');
        if (tr.getAttribute('data-locked') !== lk) {
          tr.setAttribute('data-locked', lk);
          locks(st, r.locked_from || [], r.participant);
        }
      }
      setText(cell(tr, 'c-pc'), r.pc);
      setText(cell(tr, 'c-ans'), r.answered + '/' + r.items);
      setText(cell(tr, 'c-doubt'), String(r.doubtful));
      u = cell(tr, 'c-unsaved');
      setText(u, String(r.unsaved));
      if (u) { u.className = 'c-unsaved' + (r.unsaved > 0 ? ' warn' : ''); }
      setText(cell(tr, 'c-rem'), r.counting ? hmmss(r.remaining_ms) : '');
      setText(cell(tr, 'c-seen'), r.last_seen || '');
    }
  };
})();
