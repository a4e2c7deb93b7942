// vitclassify report: a paged gallery over the records (one array per image, fields in meta.fields), filtered and
// sorted in the browser; only the thumbnails of the page shown are loaded.
(function () {
  'use strict';
  const meta = JSON.parse(document.getElementById('report-meta').textContent);
  const rows = JSON.parse(document.getElementById('report-data').textContent);
  const $ = (id) => document.getElementById(id);
  const F = {}; meta.fields.forEach((f, i) => { F[f] = i; });
  const PAGE = 100;
  const state = { label: '', truth: '', correct: '', min: 0, max: 1, search: '', sort: 'default', cell: null, page: 0 };
  let shown = [];

  const wrong = (r) => r[F.truth] !== null && r[F.index] !== r[F.truth];

  function options(select, indices) {
    for (const i of indices) { const o = document.createElement('option'); o.value = String(i); o.textContent = meta.labels[i]; select.appendChild(o); }
  }

  function apply() {
    const text = state.search.toLowerCase();
    shown = [];
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i], p = r[F.probability];
      if (state.label !== '' && r[F.index] !== Number(state.label)) continue;
      if (state.truth !== '' && r[F.truth] !== Number(state.truth)) continue;
      if (state.correct === 'wrong' && !wrong(r)) continue;
      if (state.correct === 'right' && (r[F.truth] === null || wrong(r))) continue;
      if (state.cell && (r[F.truth] !== state.cell[0] || r[F.index] !== state.cell[1])) continue;
      if (p !== null && (p < state.min || p > state.max)) continue;
      if (text && r[F.name].toLowerCase().indexOf(text) < 0) continue;
      shown.push(i);
    }
    const by = {
      'default': (a, b) => (wrong(rows[b]) - wrong(rows[a])) || ((rows[a][F.probability] ?? 2) - (rows[b][F.probability] ?? 2)) || (a - b),
      'confidence-asc': (a, b) => ((rows[a][F.probability] ?? -1) - (rows[b][F.probability] ?? -1)) || (a - b),
      'confidence-desc': (a, b) => ((rows[b][F.probability] ?? -1) - (rows[a][F.probability] ?? -1)) || (a - b),
      'name': (a, b) => (rows[a][F.name] < rows[b][F.name] ? -1 : rows[a][F.name] > rows[b][F.name] ? 1 : a - b),
      'label': (a, b) => (rows[a][F.label] < rows[b][F.label] ? -1 : rows[a][F.label] > rows[b][F.label] ? 1 : a - b),
    };
    shown.sort(by[state.sort]);
    state.page = Math.min(state.page, Math.max(0, Math.ceil(shown.length / PAGE) - 1));
    render();
  }

  function render() {
    const gallery = $('gallery');
    gallery.textContent = '';
    const start = state.page * PAGE, end = Math.min(shown.length, start + PAGE);
    for (let k = start; k < end; k++) {
      const r = rows[shown[k]];
      const figure = document.createElement('figure');
      figure.dataset.name = r[F.name];
      figure.dataset.label = r[F.label];
      figure.dataset.index = String(r[F.index]);
      figure.dataset.truth = r[F.truth] === null ? '' : String(r[F.truth]);
      figure.dataset.probability = r[F.probability] === null ? '' : String(r[F.probability]);
      if (wrong(r)) figure.classList.add('wrong');
      const link = document.createElement('a');
      link.href = r[F.page] || r[F.thumb] || '#';
      if (r[F.thumb]) { const img = document.createElement('img'); img.loading = 'lazy'; img.src = r[F.thumb]; img.alt = r[F.name]; link.appendChild(img); }
      const caption = document.createElement('figcaption');
      const label = document.createElement('div'); label.className = 'label';
      label.textContent = r[F.error] !== null ? 'error' : r[F.label] + ' ' + (100 * r[F.probability]).toFixed(1) + '%';
      const name = document.createElement('div'); name.className = 'name';
      name.textContent = (r[F.truth] !== null ? 'true: ' + meta.labels[r[F.truth]] + ' · ' : '') + r[F.name];
      name.title = r[F.error] !== null ? r[F.error] : r[F.name];
      caption.append(label, name);
      figure.append(link, caption);
      gallery.appendChild(figure);
    }
    gallery.dataset.count = String(shown.length);
    gallery.dataset.page = String(state.page);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    $('count').textContent = shown.length + ' of ' + rows.length + ' images' + (state.cell ? ' · true ' + meta.labels[state.cell[0]] + ', predicted ' + meta.labels[state.cell[1]] : '');
    $('page').textContent = 'page ' + (state.page + 1) + ' of ' + pages;
    $('prev').disabled = state.page === 0;
    $('next').disabled = state.page + 1 >= pages;
    for (const td of document.querySelectorAll('table.confusion td')) {
      td.classList.toggle('selected', !!state.cell && Number(td.dataset.true) === state.cell[0] && Number(td.dataset.pred) === state.cell[1]);
    }
  }

  function main() {
    if (meta.eval) document.documentElement.classList.add('eval');
    const predicted = new Set(), truths = new Set();
    for (const r of rows) { if (r[F.index] >= 0) predicted.add(r[F.index]); if (r[F.truth] !== null) truths.add(r[F.truth]); }
    options($('label'), Array.from(predicted).sort((a, b) => a - b));
    options($('truth'), Array.from(truths).sort((a, b) => a - b));
    const wrongCount = rows.filter(wrong).length;
    $('summary').textContent = meta.model + ' · ' + rows.length + ' images' + (meta.eval ? ' · ' + wrongCount + ' misclassified' : '');
    const bind = (id, key, event, parse) => $(id).addEventListener(event, () => { state[key] = parse($(id).value); state.page = 0; apply(); });
    bind('label', 'label', 'change', String);
    bind('truth', 'truth', 'change', String);
    bind('correct', 'correct', 'change', String);
    bind('sort', 'sort', 'change', String);
    bind('min', 'min', 'input', (v) => (v === '' ? 0 : Number(v)));
    bind('max', 'max', 'input', (v) => (v === '' ? 1 : Number(v)));
    bind('search', 'search', 'input', String);
    $('clear').addEventListener('click', () => {
      Object.assign(state, { label: '', truth: '', correct: '', min: 0, max: 1, search: '', cell: null, page: 0 });
      for (const [id, v] of [['label', ''], ['truth', ''], ['correct', ''], ['min', '0'], ['max', '1'], ['search', '']]) $(id).value = v;
      apply();
    });
    $('prev').addEventListener('click', () => { state.page = Math.max(0, state.page - 1); render(); });
    $('next').addEventListener('click', () => { state.page += 1; render(); });
    for (const td of document.querySelectorAll('table.confusion td')) {
      td.addEventListener('click', () => {
        const cell = [Number(td.dataset.true), Number(td.dataset.pred)];
        state.cell = state.cell && state.cell[0] === cell[0] && state.cell[1] === cell[1] ? null : cell;
        state.page = 0;
        apply();
      });
    }
    document.documentElement.classList.add('ready');
    apply();
    $('gallery').dataset.ready = 'true';
  }

  try { main(); } catch (error) { console.error('vitclassify report: ' + (error && error.message ? error.message : error)); }
})();
