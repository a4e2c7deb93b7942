// vitclassify explore: the interactive view of one image's attention.
// The data block (JSON in #vit-data) holds the page's metadata and, deflated and base64-encoded, every attention row
// of every layer and head quantised per row (see ExplorePage.AttentionBlock in ViTKit). The overlay is drawn with the
// geometry of `vitclassify --overlay`: each display pixel is taken back to the original image, through the resize
// and the crop, onto the patch grid, and interpolated bilinearly between patch centres.
(function () {
  'use strict';
  const meta = JSON.parse(document.getElementById('vit-data').textContent);
  const $ = (id) => document.getElementById(id);
  const L = meta.layers, H = meta.heads, N = meta.tokens, P = meta.prefixTokens, G = N - P;
  const GH = meta.grid[0], GW = meta.grid[1];
  const FUSIONS = meta.fusions;
  const SETS = L * H + FUSIONS.length;
  const Q = meta.queries;  // rows per set: the tokens, and without a class token the mean of the patch queries
  const W = meta.image.width, IH = meta.image.height;
  const DW = meta.image.displayWidth, DH = meta.image.displayHeight;
  const geo = meta.geometry;
  const patchW = geo.outputWidth / GW, patchH = geo.outputHeight / GH;
  const sx = geo.resizedWidth / W, sy = geo.resizedHeight / IH;
  const tables = {};
  for (const name of Object.keys(meta.colormaps)) tables[name] = bytesOf(meta.colormaps[name]);

  const state = {
    layer: meta.view.layer === 'rollout' ? 'rollout' : Number(meta.view.layer),
    head: /^\d+$/.test(meta.view.head) ? Number(meta.view.head) : meta.view.head,
    pinned: null, hover: null, method: '', target: null,
    colormap: meta.view.colormap in tables ? meta.view.colormap : 'inferno',
    alpha: meta.view.alpha,
  };
  let scales, prefix, levels, LEVELS, baseMain, axesMain, thumbs = [];

  function bytesOf(text) {
    const s = atob(text), b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return b;
  }

  // The attention block: base64 → bytes through the browser's own data: URL decoder (falling back to atob), then
  // inflated by DecompressionStream('deflate').
  async function block() {
    let body;
    try {
      body = (await fetch('data:application/octet-stream;base64,' + meta.data)).body;
    } catch (error) {
      body = new Blob([bytesOf(meta.data)]).stream();
    }
    return new Response(body.pipeThrough(new DecompressionStream('deflate'))).arrayBuffer();
  }

  function load(buffer) {
    if (buffer.byteLength !== meta.rawBytes) throw new Error('attention block is ' + buffer.byteLength + ' bytes, expected ' + meta.rawBytes);
    scales = new Float32Array(buffer, 0, SETS * Q);
    prefix = new Float32Array(buffer, 4 * SETS * Q, SETS * Q * P);
    const offset = 4 * SETS * Q * (1 + P);
    levels = meta.bits === 8 ? new Uint8Array(buffer, offset, SETS * Q * G) : new Uint16Array(buffer, offset, SETS * Q * G);
    LEVELS = meta.bits === 8 ? 255 : 65535;
    if (meta.filter === 'up') {
      // Each row holds its levels minus the previous query's (modulo 2^bits): add them back, row by row.
      for (let s = 0; s < SETS; s++) {
        for (let q = 1; q < Q; q++) {
          const r = (s * Q + q) * G;
          for (let k = 0; k < G; k++) levels[r + k] += levels[r - G + k];
        }
      }
    }
  }

  // Row `q` (query token) of row set `set` over all keys, prefix tokens first.
  function row(set, q) {
    const out = new Float64Array(N), r = set * Q + q;
    for (let k = 0; k < P; k++) out[k] = prefix[r * P + k];
    const s = scales[r] / LEVELS, base = r * G;
    for (let k = 0; k < G; k++) out[P + k] = levels[base + k] * s;
    return out;
  }

  // The query's row; the default query is the class token, or without one the mean of the patch queries (as the
  // CLI draws it), stored as row N of each set.
  function queryRow(set, q) {
    if (q !== null) return row(set, q);
    return row(set, meta.classToken ? 0 : N);
  }

  // The chosen map: the full row (prefix keys first) and the values drawn over the patches.
  function selectedRow(layer, head, q) {
    if (layer === 'rollout') {
      const full = queryRow(L * H + FUSIONS.indexOf(head), q);
      let m = 0;
      for (let k = P; k < N; k++) m = Math.max(m, full[k]);
      const patches = full.slice(P).map((v) => (m > 0 ? v / m : 0));
      return { full, patches };
    }
    if (typeof head === 'number') { const full = queryRow(layer * H + head, q); return { full, patches: full.slice(P) }; }
    const rows = [];
    for (let h = 0; h < H; h++) rows.push(queryRow(layer * H + h, q));
    const full = new Float64Array(N);
    for (let k = 0; k < N; k++) {
      let v = head === 'mean' ? 0 : rows[0][k];
      for (let h = 0; h < H; h++) {
        if (head === 'mean') v += rows[h][k];
        else if (head === 'max') v = Math.max(v, rows[h][k]);
        else v = Math.min(v, rows[h][k]);
      }
      full[k] = head === 'mean' ? v / H : v;
    }
    return { full, patches: full.slice(P) };
  }

  // Per output column (or row): the grid cells either side and the weight, or ok = 0 outside the crop.
  function axis(count, original, scale, offset, inputSize, patch, cells) {
    const lo = new Int32Array(count), hi = new Int32Array(count), t = new Float64Array(count), ok = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const input = ((i + 0.5) * original / count) * scale - offset;
      if (!(input >= 0 && input < inputSize)) continue;
      const position = Math.min(Math.max(input / patch - 0.5, 0), cells - 1);
      lo[i] = Math.floor(position); hi[i] = Math.min(lo[i] + 1, cells - 1); t[i] = position - lo[i]; ok[i] = 1;
    }
    return { lo, hi, t, ok };
  }
  function axes(w, h) {
    return {
      w, h,
      x: axis(w, W, sx, geo.cropLeft, geo.outputWidth, patchW, GW),
      y: axis(h, IH, sy, geo.cropTop, geo.outputHeight, patchH, GH),
    };
  }

  // Draws `map` (over the patches) onto `ctx`: heat = map / max, coloured, blended over `base` with alpha.
  function paint(ctx, base, ax, map) {
    let m = 0;
    for (const v of map) m = Math.max(m, v);
    const norm = map.map((v) => (m > 0 ? Math.max(v, 0) / m : 0));
    const table = tables[state.colormap], a = Math.fround(state.alpha), b = Math.fround(1 - a);
    const image = ctx.createImageData(ax.w, ax.h), d = image.data;
    for (let y = 0; y < ax.h; y++) {
      const rowOk = ax.y.ok[y], y0 = ax.y.lo[y] * GW, y1 = ax.y.hi[y] * GW, ty = ax.y.t[y];
      for (let x = 0; x < ax.w; x++) {
        let heat = 0;
        if (rowOk && ax.x.ok[x]) {
          const x0 = ax.x.lo[x], x1 = ax.x.hi[x], tx = ax.x.t[x];
          const top = norm[y0 + x0] * (1 - tx) + norm[y0 + x1] * tx;
          const bottom = norm[y1 + x0] * (1 - tx) + norm[y1 + x1] * tx;
          heat = Math.fround(top * (1 - ty) + bottom * ty);
        }
        const v = Number.isFinite(heat) ? Math.min(Math.max(heat, 0), 1) : 0;
        const c = Math.min(Math.floor(v * 256), 255) * 3, o = (y * ax.w + x) * 4;
        d[o] = Math.round(b * base[o] + a * table[c]);
        d[o + 1] = Math.round(b * base[o + 1] + a * table[c + 1]);
        d[o + 2] = Math.round(b * base[o + 2] + a * table[c + 2]);
        d[o + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    return m;
  }

  // The patch outline of token `q` (a patch token) on a canvas of w × h.
  function outline(ctx, q, w, h) {
    const g = q - P, gy = Math.floor(g / GW), gx = g % GW;
    // Whole pixels, so that the line is drawn crisp (in one exact colour) rather than blended into its neighbours.
    const x0 = Math.round((gx * patchW + geo.cropLeft) / sx * w / W), x1 = Math.round(((gx + 1) * patchW + geo.cropLeft) / sx * w / W);
    const y0 = Math.round((gy * patchH + geo.cropTop) / sy * h / IH), y1 = Math.round(((gy + 1) * patchH + geo.cropTop) / sy * h / IH);
    const line = Math.max(1, Math.round(Math.min(w, h) / 160));
    ctx.lineWidth = line;
    ctx.strokeStyle = '#00e5ff';
    ctx.strokeRect(x0 + line / 2, y0 + line / 2, Math.max(1, x1 - x0 - line), Math.max(1, y1 - y0 - line));
  }

  function pixelsOf(image, w, h) {
    const canvas = document.createElement('canvas');
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingEnabled = w < image.naturalWidth;
    ctx.drawImage(image, 0, 0, w, h);
    return ctx.getImageData(0, 0, w, h).data;
  }

  function fmt(v) { return Number(v.toPrecision(6)).toString(); }
  function tokenName(q) {
    if (q === null) return meta.classToken ? meta.tokenNames[0] : 'mean of patches';
    if (q < P) return meta.tokenNames[q];
    const g = q - P;
    return 'patch (' + Math.floor(g / GW) + ', ' + (g % GW) + ')';
  }
  function query() { return state.hover !== null ? state.hover : state.pinned; }

  // A precomputed class-specific explanation (method, target class), or null.
  function explanation() {
    if (!state.method) return null;
    return meta.explanations.find((e) => e.method === state.method && e.target === state.target) || null;
  }

  function draw() {
    const e = explanation();
    const q = e ? null : query();
    const view = $('view');
    const { full, patches } = e ? { full: new Float64Array(P), patches: Float64Array.from(e.values) } : selectedRow(state.layer, state.head, q);
    const ctx = view.getContext('2d');
    const m = paint(ctx, baseMain, axesMain, patches);
    if (q !== null && q >= P) outline(ctx, q, DW, DH);
    const ds = view.dataset;
    ds.method = e ? e.method : 'attention';
    ds.target = e ? String(e.target) : '';
    ds.layer = String(state.layer);
    ds.head = String(state.head);
    ds.query = q === null ? 'default' : String(q);
    ds.queryName = tokenName(q);
    ds.patch = q !== null && q >= P ? Math.floor((q - P) / GW) + ',' + ((q - P) % GW) : '';
    ds.values = Array.from(patches, fmt).join(',');
    ds.prefix = Array.from(full.slice(0, P), fmt).join(',');
    ds.max = fmt(m);
    ds.colormap = state.colormap;
    ds.alpha = String(state.alpha);
    ds.bits = String(meta.bits);
    ds.grid = GH + 'x' + GW;
    drawLegend(m);
    for (const b of document.querySelectorAll('#tokens button')) {
      const t = b.dataset.token === 'default' ? null : Number(b.dataset.token);
      const effective = q === null && meta.classToken ? 0 : q;
      b.setAttribute('aria-pressed', String(t === effective || (t === null && q === null)));
    }
    const what = state.layer === 'rollout' ? 'rollout (' + state.head + ' fusion)' : 'layer ' + state.layer + ', ' + (typeof state.head === 'number' ? 'head ' + state.head : state.head + ' of heads');
    const toPrefix = P > 0 ? ' · to ' + meta.tokenNames.map((n, i) => n + ' ' + fmt(full[i])).join(', ') : '';
    if (e) { $('status').textContent = e.method + ' for class ' + e.label + ' (class-specific: no query)'; drawHeads(q); ds.ready = 'true'; return; }
    $('status').textContent = what + ' · query: ' + tokenName(q) + (state.pinned !== null ? ' (pinned)' : '') + toPrefix;
    drawHeads(q);
    ds.ready = 'true';
  }

  function drawLegend(m) {
    const canvas = $('legend'), ctx = canvas.getContext('2d'), table = tables[state.colormap];
    const image = ctx.createImageData(256, 1);
    for (let i = 0; i < 256; i++) { for (let c = 0; c < 3; c++) image.data[i * 4 + c] = table[i * 3 + c]; image.data[i * 4 + 3] = 255; }
    for (let y = 0; y < canvas.height; y++) ctx.putImageData(image, 0, y);
    $('legend-max').textContent = m.toPrecision(3);
    $('legend-label').textContent = explanation() ? 'explanation value' : state.layer === 'rollout' ? 'rollout ÷ its max' : 'attention probability';
    canvas.dataset.max = fmt(m);
  }

  function drawHeads(q) {
    const layer = state.layer === 'rollout' ? L - 1 : state.layer;
    $('heads-title').textContent = 'Heads of layer ' + layer + (state.layer === 'rollout' ? ' (the last)' : '') + ' · query: ' + tokenName(q);
    for (let h = 0; h < H; h++) {
      const t = thumbs[h];
      const map = queryRow(layer * H + h, q).slice(P);
      const ctx = t.canvas.getContext('2d');
      const m = paint(ctx, t.base, t.axes, map);
      if (q !== null && q >= P) outline(ctx, q, t.axes.w, t.axes.h);
      t.canvas.dataset.max = fmt(m);
      t.canvas.dataset.layer = String(layer);
      t.figure.classList.toggle('selected', state.layer !== 'rollout' && state.head === h);
    }
  }

  function headOptions() {
    const select = $('head');
    const keep = state.head;
    select.textContent = '';
    const choices = state.layer === 'rollout' ? FUSIONS : ['mean', 'max', 'min'].concat(Array.from({ length: H }, (_, h) => h));
    for (const c of choices) {
      const o = document.createElement('option');
      o.value = String(c);
      o.textContent = typeof c === 'number' ? 'head ' + c : c;
      select.appendChild(o);
    }
    state.head = choices.includes(keep) ? keep : 'mean';
    select.value = String(state.head);
  }

  function setLayer(value) {
    state.layer = value === 'rollout' ? 'rollout' : Number(value);
    $('layer').value = String(state.layer);
    headOptions();
    draw();
  }
  function setHead(value) {
    state.head = /^\d+$/.test(String(value)) ? Number(value) : String(value);
    $('head').value = String(state.head);
    draw();
  }

  // The token under a pointer event on a canvas showing the whole image, or null outside the crop.
  function tokenAt(event, canvas) {
    const rect = canvas.getBoundingClientRect();
    const ox = (event.clientX - rect.left) / rect.width * W, oy = (event.clientY - rect.top) / rect.height * IH;
    const ix = ox * sx - geo.cropLeft, iy = oy * sy - geo.cropTop;
    if (!(ix >= 0 && ix < geo.outputWidth && iy >= 0 && iy < geo.outputHeight)) return null;
    const gx = Math.min(GW - 1, Math.floor(ix / patchW)), gy = Math.min(GH - 1, Math.floor(iy / patchH));
    return P + gy * GW + gx;
  }

  function controls() {
    const layer = $('layer');
    for (let l = 0; l < L; l++) { const o = document.createElement('option'); o.value = String(l); o.textContent = 'layer ' + l; layer.appendChild(o); }
    const r = document.createElement('option'); r.value = 'rollout'; r.textContent = 'rollout'; layer.appendChild(r);
    layer.value = String(state.layer);
    headOptions();
    layer.addEventListener('change', () => setLayer(layer.value));
    $('head').addEventListener('change', () => setHead($('head').value));
    $('colormap').value = state.colormap;
    $('colormap').addEventListener('change', () => { state.colormap = $('colormap').value; draw(); });
    $('alpha').value = String(state.alpha);
    $('alpha-value').textContent = String(state.alpha);
    $('alpha').addEventListener('input', () => { state.alpha = Number($('alpha').value); $('alpha-value').textContent = $('alpha').value; draw(); });

    if (meta.explanations.length > 0) {
      document.documentElement.classList.add('explanations');
      const methods = [], targets = [];
      for (const e of meta.explanations) {
        if (!methods.includes(e.method)) methods.push(e.method);
        if (!targets.some((t) => t[0] === e.target)) targets.push([e.target, e.label]);
      }
      for (const m of methods) { const o = document.createElement('option'); o.value = m; o.textContent = m; $('method').appendChild(o); }
      for (const [t, label] of targets) { const o = document.createElement('option'); o.value = String(t); o.textContent = label; $('target').appendChild(o); }
      state.target = targets[0][0];
      $('method').addEventListener('change', () => { state.method = $('method').value; draw(); });
      $('target').addEventListener('change', () => { state.target = Number($('target').value); draw(); });
    }
    const tokens = $('tokens');
    const names = meta.tokenNames.map((n, i) => [String(i), n]);
    if (!meta.classToken) names.unshift(['default', 'mean of patches']);
    for (const [t, n] of names) {
      const b = document.createElement('button');
      b.type = 'button'; b.dataset.token = t; b.textContent = n;
      b.addEventListener('click', () => { state.pinned = t === 'default' ? null : Number(t); state.hover = null; draw(); });
      tokens.appendChild(b);
    }

    const view = $('view');
    view.addEventListener('mousemove', (e) => { const t = tokenAt(e, view); if (t !== state.hover) { state.hover = t; draw(); } });
    view.addEventListener('mouseleave', () => { if (state.hover !== null) { state.hover = null; draw(); } });
    view.addEventListener('click', (e) => {
      const t = tokenAt(e, view);
      state.pinned = t === null || t === state.pinned ? null : t;
      state.hover = null;
      draw();
    });

    document.addEventListener('keydown', (e) => {
      if (e.target instanceof HTMLSelectElement || e.target instanceof HTMLInputElement) return;
      const layers = Array.from(layer.options, (o) => o.value), heads = Array.from($('head').options, (o) => o.value);
      const step = (list, value, d) => list[(list.indexOf(String(value)) + d + list.length) % list.length];
      if (e.key === 'ArrowDown') setLayer(step(layers, state.layer, 1));
      else if (e.key === 'ArrowUp') setLayer(step(layers, state.layer, -1));
      else if (e.key === 'ArrowRight') setHead(step(heads, state.head, 1));
      else if (e.key === 'ArrowLeft') setHead(step(heads, state.head, -1));
      else if (e.key === 'Escape') { state.pinned = null; state.hover = null; draw(); }
      else return;
      e.preventDefault();
    });
  }

  function headGrid(source) {
    const k = Math.min(1, 128 / Math.max(DW, DH));
    const w = Math.max(1, Math.round(DW * k)), h = Math.max(1, Math.round(DH * k));
    const base = pixelsOf(source, w, h), ax = axes(w, h);
    const container = $('heads');
    for (let hd = 0; hd < H; hd++) {
      const figure = document.createElement('figure');
      const canvas = document.createElement('canvas');
      canvas.width = w; canvas.height = h; canvas.dataset.head = String(hd);
      const caption = document.createElement('figcaption');
      caption.textContent = 'head ' + hd;
      figure.append(canvas, caption);
      figure.addEventListener('click', () => {
        if (state.layer === 'rollout') { state.layer = L - 1; $('layer').value = String(L - 1); headOptions(); }
        setHead(hd);
      });
      container.appendChild(figure);
      thumbs.push({ canvas, figure, base, axes: ax });
    }
  }

  async function main() {
    const source = $('source');
    await source.decode();
    load(await block());
    baseMain = pixelsOf(source, DW, DH);
    axesMain = axes(DW, DH);
    controls();
    headGrid(source);
    document.documentElement.classList.add('ready');
    draw();
    document.documentElement.dataset.firstViewMs = performance.now().toFixed(1);
  }

  main().catch((error) => {
    document.documentElement.classList.remove('ready');
    console.error('vitclassify explore: ' + (error && error.message ? error.message : error));
  });
})();
