// banger web UI: keeps server-rendered pages live over server-sent events.
// Everything the server sends is JSON and is written with textContent or
// setAttribute, never parsed as markup.
'use strict';

(function () {
  const maxEvents = 200;
  const maxLog = 256 * 1024;

  document.addEventListener('DOMContentLoaded', () => {
    const live = document.body.dataset.live;
    if (live) connect(live);
    document.querySelectorAll('pre[data-log]').forEach(tail);
  });

  function connect(url) {
    const conn = document.getElementById('conn');
    const es = new EventSource(url);
    es.onopen = () => { conn.textContent = 'live'; conn.dataset.ok = 'yes'; };
    es.onerror = () => { conn.textContent = 'reconnecting…'; conn.dataset.ok = 'no'; };
    es.addEventListener('vms', (e) => updateVMs(JSON.parse(e.data)));
    es.addEventListener('event', (e) => addEvent(JSON.parse(e.data)));
    es.addEventListener('notice', (e) => addNotice(JSON.parse(e.data)));
  }

  function vmElements(name) {
    return Array.from(document.querySelectorAll('[data-vm]')).filter((el) => el.dataset.vm === name);
  }

  function updateVMs(vms) {
    const tbody = document.querySelector('#vms tbody');
    const names = new Set();
    for (const vm of vms) {
      names.add(vm.name);
      let els = vmElements(vm.name);
      if (els.length === 0 && tbody) {
        const row = newRow(vm.name);
        tbody.appendChild(row);
        els = [row];
      }
      els.forEach((el) => fill(el, vm));
    }
    if (tbody) {
      tbody.querySelectorAll('tr[data-vm]').forEach((row) => { if (!names.has(row.dataset.vm)) row.remove(); });
      const empty = document.getElementById('no-vms');
      if (empty) empty.hidden = names.size > 0;
    }
    const page = document.querySelector('[data-vm-page]');
    if (page && !names.has(page.dataset.vmPage)) {
      fill(page, { state: 'deleted' });
    }
  }

  function fill(el, vm) {
    el.querySelectorAll('[data-field]').forEach((f) => {
      const key = f.dataset.field;
      if (key === 'link' || !(key in vm)) return;
      if (key.endsWith('_pts')) {
        f.setAttribute('points', vm[key]);
        return;
      }
      if (key === 'state') f.dataset.state = vm.state;
      f.textContent = vm[key];
    });
    el.querySelectorAll('[data-when]').forEach((a) => {
      a.hidden = !a.dataset.when.split(' ').includes(vm.state);
    });
  }

  function newRow(name) {
    const tpl = document.getElementById('vm-row');
    const row = tpl.content.firstElementChild.cloneNode(true);
    const path = '/vms/' + encodeURIComponent(name);
    row.dataset.vm = name;
    const link = row.querySelector('[data-field="link"]');
    link.textContent = name;
    link.href = path;
    row.querySelectorAll('[data-action]').forEach((a) => { a.href = path + '/confirm?action=' + a.dataset.action; });
    return row;
  }

  function addEvent(ev) {
    const ul = document.getElementById('events');
    if (!ul) return;
    ul.querySelectorAll('[data-empty]').forEach((li) => li.remove());
    const li = document.createElement('li');
    li.dataset.level = ev.level;
    li.append(el('time', when(ev.time)), ' ', el('span', ev.subject || '', 'subject'), ' ', el('span', ev.message, 'msg'));
    ul.prepend(li);
    while (ul.children.length > maxEvents) ul.lastElementChild.remove();
  }

  function addNotice(n) {
    const ul = document.getElementById('notices');
    if (!ul) return;
    const li = document.createElement('li');
    li.dataset.level = n.level;
    li.append(el('time', when(n.time)), ' ', n.text);
    ul.prepend(li);
    while (ul.children.length > 5) ul.lastElementChild.remove();
  }

  function tail(pre) {
    const status = pre.parentElement.querySelector('[data-log-status]');
    const es = new EventSource(pre.dataset.log);
    const scroll = () => { pre.scrollTop = pre.scrollHeight; };
    es.onopen = () => { if (status) status.textContent = 'live'; };
    es.addEventListener('tail', (e) => { pre.textContent = JSON.parse(e.data); scroll(); });
    es.addEventListener('log', (e) => {
      pre.append(JSON.parse(e.data));
      if (pre.textContent.length > maxLog) pre.textContent = pre.textContent.slice(-maxLog / 2);
      scroll();
    });
    es.addEventListener('end', (e) => {
      es.close();
      if (status) status.textContent = JSON.parse(e.data);
    });
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function when(t) {
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
})();
