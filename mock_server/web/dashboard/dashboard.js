// The dashboard's script: polls the control plane every POLL_MS and keeps a market-data socket open.
// Every value comes from the emulator, so the DOM is built with textContent only (journal paths and bodies are
// whatever clients sent). Polls carry X-Tradefence-Dashboard: poll and the socket ?watch=dashboard, which keep the
// page's own requests out of the journal. Times are shown in UTC, like the emulator's clock.
'use strict';

const POLL_MS = 2000;
const MAX_ACCOUNTS = 25;      // per poll: each account costs two requests
const ORDERS_PER_ACCOUNT = 20;
const ROWS = 50;
const DEFAULT_SYMBOLS = ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'TSLA', 'NVDA'];
const POLL_HEADERS = { 'X-Tradefence-Dashboard': 'poll' };
// Listening beyond loopback, the emulator wants a bearer token on /_mock: asked for once, kept for this tab.
const TOKEN_KEY = 'tradefence-control-token';
let tokenDeclined = false;
const HISTORY = 120;          // price points kept per symbol for its chart (one per tick)
const FILL_WINDOW_MS = 10 * 60 * 1000;  // fills older than this before the newest point are left off the chart
const CHART = { width: 200, height: 38, pad: 4 };
const SVG = 'http://www.w3.org/2000/svg';

const watched = new Set(symbolsFromQuery() || DEFAULT_SYMBOLS);
const quotes = new Map();     // symbol -> {bid, ask, last, at}
const history = new Map();    // symbol -> [{t, price}], oldest first: the mid of each quote
const fills = new Map();      // symbol -> [{t, price, side, quantity, account, order}] from the polled orders
const journalEntries = new Map();  // request id -> journal entry, as last polled
let selectedRequest = null;
let socket = null;
let reconnectDelay = 1000;

// -- helpers --------------------------------------------------------------------------------------------------

function symbolsFromQuery() {
  const raw = new URLSearchParams(location.search).get('symbols');
  if (!raw) return null;
  const symbols = raw.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  return symbols.length ? symbols : null;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells, className) {
  const tr = el('tr', undefined, className);
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = el('td');
      td.appendChild(cell);
      tr.appendChild(td);
    } else if (cell && typeof cell === 'object') {
      const td = el('td', cell.text, cell.className);
      if (cell.title) td.title = cell.title;
      tr.appendChild(td);
    } else {
      tr.appendChild(el('td', cell));
    }
  }
  return tr;
}

function fill(tableId, rows, columns, emptyText) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...(rows.length ? rows : [row([{ text: emptyText, className: 'empty' }])]));
  if (!rows.length) body.firstChild.firstChild.colSpan = columns;
}

function money(value, digits = 2) {
  if (value === null || value === undefined) return '–';
  return Number(value).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function num(value, digits, extra) {
  return { text: money(value, digits), className: `num${extra ? ` ${extra}` : ''}` };
}

function signed(value, digits = 2) {
  return num(value, digits, value > 0 ? 'up' : value < 0 ? 'down' : '');
}

function time(iso) {
  return iso ? iso.slice(11, 19) : '–';
}

function accountCell(id) {
  return { text: id, className: 'mono account', title: id };
}

function badge(text, kind) {
  return el('span', text, `badge ${kind || text}`);
}

function pollFetch(path, token) {
  const headers = token ? { ...POLL_HEADERS, Authorization: `Bearer ${token}` } : POLL_HEADERS;
  return fetch(path, { headers, cache: 'no-store' });
}

function askForToken(refused) {
  // Polls run in parallel: only the first refusal of a token asks; the others retry with the answer.
  if (tokenDeclined || sessionStorage.getItem(TOKEN_KEY) !== refused) return;
  const given = window.prompt('This emulator listens beyond loopback, so its control plane needs the control '
    + 'token (printed at start, or TRADEFENCE_CONTROL_TOKEN):');
  if (given && given.trim()) {
    sessionStorage.setItem(TOKEN_KEY, given.trim());
  } else {
    tokenDeclined = true;
  }
}

async function getJson(path) {
  const sent = sessionStorage.getItem(TOKEN_KEY);
  let response = await pollFetch(path, sent);
  if (response.status === 401) {
    askForToken(sent);
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token && token !== sent) response = await pollFetch(path, token);
  }
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

async function optional(path) {
  // Endpoints this emulator may not have (an older build): null instead of failing the whole poll.
  try {
    return await getJson(path);
  } catch (error) {
    if (error.status === 404 || error.status === 405) return null;
    throw error;
  }
}

// -- polling --------------------------------------------------------------------------------------------------

async function poll() {
  try {
    const [state, accounts, journal, deliveries] = await Promise.all([
      getJson('/_mock/state'),
      getJson('/_mock/accounts'),
      // Everything but the control plane (/_mock), in RE2 syntax (no lookahead): no other path starts with '_'.
      optional(`/_mock/journal?limit=${ROWS}&path=${encodeURIComponent('^/([^_]|$)')}`),
      optional('/_mock/webhooks/deliveries?limit=20'),
    ]);
    const shown = accounts.data.slice(0, MAX_ACCOUNTS);
    const books = await Promise.all(shown.map(async (account) => {
      const base = `/_mock/accounts/${encodeURIComponent(account.id)}`;
      const [orders, positions] = await Promise.all([
        optional(`${base}/orders?limit=${ORDERS_PER_ACCOUNT}`),
        optional(`${base}/positions`),
      ]);
      return { account, orders: orders ? orders.data : [], positions: positions ? positions.data : [] };
    }));
    renderState(state);
    renderAccounts(accounts.data, books);
    renderOrders(books);
    renderPositions(books);
    renderJournal(journal);
    renderWebhooks(deliveries);
    setStatus(`updated ${new Date().toISOString().slice(11, 19)} UTC`, false);
  } catch (error) {
    const why = error.status === 401 ? 'the control token is missing or wrong (reload to enter it)' : 'unreachable';
    setStatus(`emulator ${why}: ${error.message}`, true);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function setStatus(text, isError) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function renderState(state) {
  document.getElementById('state-seed').textContent = state.seed;
  document.getElementById('state-clock').textContent =
    `${state.clock.now.replace('T', ' ').replace('Z', ' UTC')}${state.clock.frozen ? ' (frozen)' : ''}`;
  document.getElementById('state-market').textContent =
    `${state.market_open ? 'open' : 'closed'} (mode ${state.market_mode})`;
  document.getElementById('state-faults').textContent = state.faults;
}

function renderAccounts(all, books) {
  document.getElementById('accounts-note').textContent =
    all.length > books.length ? `showing ${books.length} of ${all.length}` : '';
  fill('accounts', books.map(({ account }) => row([
    accountCell(account.id), num(account.cash), num(account.buying_power),
    num(account.reserved_cash), num(account.positions_value), num(account.equity), signed(account.realized_pl),
    time(account.created_at),
  ])), 8, 'No accounts yet: mint a token or sign in (the account opens on first use).');
}

function renderOrders(books) {
  const orders = books.flatMap(({ account, orders }) => orders.map((order) => ({ account, order })));
  orders.sort((a, b) => (a.order.id < b.order.id ? 1 : -1)); // ids sort by creation time
  fills.clear();
  for (const { account: owner, order } of orders) {
    for (const item of order.fills) {
      const list = fills.get(order.symbol) || [];
      list.push({ t: Date.parse(item.timestamp), price: item.price, side: order.side, quantity: item.quantity,
        account: owner.id, order: order.id });
      fills.set(order.symbol, list);
    }
  }
  renderQuotes();
  fill('orders', orders.slice(0, ROWS).map(({ account: owner, order }) => {
    const open = order.status === 'OPEN' || order.status === 'PARTIALLY_FILLED';
    const limits = [order.price, order.stop_price].filter((v) => v !== null).map((v) => money(v)).join(' / ');
    return row([
      accountCell(owner.id), { text: order.id, className: 'mono', title: order.client_order_id || '' },
      order.symbol, order.side, `${order.type} ${order.time_in_force}`, num(order.quantity, 0),
      num(order.filled_quantity, 0), { text: limits || '–', className: 'num' }, num(order.average_fill_price, 4),
      badge(order.status), time(order.created_at),
    ], open ? 'open' : '');
  }), 11, 'No orders yet.');
}

function renderPositions(books) {
  const positions = books.flatMap(({ account, positions }) => positions.map((position) => ({ account, position })));
  for (const { position } of positions) watch(position.symbol);
  fill('positions', positions.map(({ account: owner, position }) => row([
    accountCell(owner.id), position.symbol, num(position.quantity, 0),
    num(position.average_entry_price, 4), num(position.market_price), num(position.market_value),
    signed(position.unrealized_pl),
  ])), 7, 'No open positions.');
}

function renderJournal(journal) {
  const note = document.getElementById('journal-note');
  if (journal === null) {
    note.textContent = 'not available on this emulator (no /_mock/journal)';
    fill('journal', [], 6, 'Unavailable.');
    return;
  }
  note.textContent = 'API requests only (control-plane calls hidden); click one for its headers and body';
  journalEntries.clear();
  fill('journal', journal.data.map((entry) => {
    journalEntries.set(entry.request_id, entry);
    const tr = row([
      time(entry.timestamp), entry.method, { text: entry.path, className: 'mono' },
      entry.status === null ? badge('dropped', 's5') : badge(entry.status, `s${String(entry.status)[0]}`),
      entry.operation || '–', num(entry.duration_ms, 1),
    ], entry.request_id === selectedRequest ? 'selected' : '');
    tr.dataset.request = entry.request_id;
    return tr;
  }), 6, 'No API requests yet.');
}

// One request in full, as the journal keeps it: secrets are masked there (`***`), never here.
function showRequest(requestId) {
  const entry = journalEntries.get(requestId);
  if (!entry) return;
  selectedRequest = requestId;
  for (const tr of document.querySelectorAll('#journal tbody tr')) {
    tr.classList.toggle('selected', tr.dataset.request === requestId);
  }
  document.getElementById('request-title').textContent = `${entry.method} ${entry.path}`;
  document.getElementById('request-meta').textContent = [
    entry.status === null ? 'dropped' : entry.status, entry.operation || 'no operation',
    `${money(entry.duration_ms, 1)} ms`, `${entry.timestamp.replace('T', ' ').replace('Z', ' UTC')}`,
    entry.request_id,
  ].join(' · ');
  const query = Object.entries(entry.query).flatMap(([name, values]) => values.map((v) => `${name}=${v}`));
  document.getElementById('request-query').textContent = query.length ? query.join('\n') : '(none)';
  document.getElementById('request-headers').textContent =
    Object.entries(entry.headers).map(([name, value]) => `${name}: ${value}`).join('\n') || '(none)';
  const body = entry.body;
  document.getElementById('request-body').textContent =
    body === null ? '(none)' : typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  document.getElementById('request-body-note').textContent = entry.body_truncated ? '(first 64 KiB)' : '';
  document.getElementById('request').hidden = false;
}

document.querySelector('#journal tbody').addEventListener('click', (event) => {
  const tr = event.target.closest('tr');
  if (tr && tr.dataset.request) showRequest(tr.dataset.request);
});
document.getElementById('request-close').addEventListener('click', () => {
  selectedRequest = null;
  document.getElementById('request').hidden = true;
  for (const tr of document.querySelectorAll('#journal tbody tr.selected')) tr.classList.remove('selected');
});

function renderWebhooks(deliveries) {
  if (deliveries === null) {
    fill('webhooks', [], 5, 'Unavailable.');
    return;
  }
  fill('webhooks', deliveries.data.map((event) => {
    const attempts = el('span');
    for (const delivery of event.deliveries) {
      for (const attempt of delivery.attempts) {
        const label = `#${attempt.number} ${attempt.status_code ?? 'no answer'} ${attempt.latency_ms}ms`;
        const kind = attempt.succeeded ? 's2' : 's5';
        const item = badge(label, `attempt ${kind}`);
        item.title = `${delivery.url} at ${attempt.attempted_at}${attempt.error ? `: ${attempt.error}` : ''}`;
        attempts.appendChild(item);
      }
      if (delivery.next_attempt_at) attempts.appendChild(el('span', `retry at ${time(delivery.next_attempt_at)}`));
    }
    if (!event.deliveries.length) attempts.textContent = 'no endpoint wanted it';
    return row([
      { text: event.id, className: 'mono', title: event.created_at }, event.type, event.account_id,
      badge(event.status), attempts,
    ]);
  }), 5, 'No webhook events yet.');
}

// -- market data ----------------------------------------------------------------------------------------------

function watch(symbol) {
  if (watched.has(symbol)) return;
  watched.add(symbol);
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ action: 'subscribe', symbols: [symbol] }));
  }
  renderQuotes();
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  socket = new WebSocket(`${scheme}://${location.host}/market-data?watch=dashboard`);
  const streamStatus = document.getElementById('stream-status');
  socket.onopen = () => {
    reconnectDelay = 1000;
    streamStatus.textContent = 'stream: live';
    socket.send(JSON.stringify({ action: 'subscribe', symbols: [...watched] }));
  };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === 'quote') {
      const quote = quotes.get(data.symbol) || {};
      Object.assign(quote, { bid: data.bid, ask: data.ask, at: data.timestamp });
      quotes.set(data.symbol, quote);
      remember(data.symbol, Date.parse(data.timestamp), (data.bid + data.ask) / 2);
      renderQuotes(data.symbol);
    } else if (data.type === 'trade') {
      const quote = quotes.get(data.symbol) || {};
      Object.assign(quote, { last: data.price, at: data.timestamp });
      quotes.set(data.symbol, quote);
      renderQuotes(data.symbol);
    } else if (data.type === 'error') {
      streamStatus.textContent = `stream: error ${data.code}: ${data.message}`;
      for (const symbol of data.symbols || []) watched.delete(symbol);
      renderQuotes();
    }
  };
  socket.onclose = (event) => {
    streamStatus.textContent = `stream: closed (${event.code}), reconnecting…`;
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 10000);
  };
}

function remember(symbol, t, price) {
  const points = history.get(symbol) || [];
  if (points.length && points[points.length - 1].t === t) points.pop();  // the same step again: its latest quote
  points.push({ t, price });
  if (points.length > HISTORY) points.shift();
  history.set(symbol, points);
}

// A sparkline of the symbol's recent prices, with the polled accounts' fills in its time window as triangles
// (▲ buy, ▼ sell; hover for the order). Built as SVG elements: nothing is parsed from text.
function chart(symbol) {
  const points = history.get(symbol) || [];
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('width', CHART.width);
  svg.setAttribute('height', CHART.height);
  svg.setAttribute('viewBox', `0 0 ${CHART.width} ${CHART.height}`);
  svg.dataset.symbol = symbol;
  if (!points.length) return svg;
  const newest = points[points.length - 1].t;
  // A fill is stamped with the clock's reading, a quote with the start of its step: a fill may be newer.
  const marks = (fills.get(symbol) || []).filter((f) => f.t >= newest - FILL_WINDOW_MS);
  const times = [...points.map((p) => p.t), ...marks.map((f) => f.t)];
  const prices = [...points.map((p) => p.price), ...marks.map((f) => f.price)];
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const [low, high] = [Math.min(...prices), Math.max(...prices)];
  const x = (t) => CHART.pad + (t1 === t0 ? 1 : (t - t0) / (t1 - t0)) * (CHART.width - 2 * CHART.pad);
  const y = (p) => CHART.height - CHART.pad - (high === low ? 0.5 : (p - low) / (high - low))
    * (CHART.height - 2 * CHART.pad);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.map((p) => `${x(p.t).toFixed(1)},${y(p.price).toFixed(1)}`).join(' '));
  svg.appendChild(line);
  for (const mark of marks) {
    const [cx, cy, up] = [x(mark.t), y(mark.price), mark.side === 'BUY'];
    const triangle = document.createElementNS(SVG, 'polygon');
    const d = up ? 1 : -1;  // a triangle pointing up for a buy, down for a sell
    const tip = [[cx, cy - 4 * d], [cx - 4, cy + 3 * d], [cx + 4, cy + 3 * d]];
    triangle.setAttribute('points', tip.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' '));
    triangle.setAttribute('class', `fill ${up ? 'buy' : 'sell'}`);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `${mark.side} ${mark.quantity} @ ${money(mark.price)} (${mark.account}, ${mark.order})`;
    triangle.appendChild(title);
    svg.appendChild(triangle);
  }
  return svg;
}

function renderQuotes(changed) {
  fill('quotes', [...watched].sort().map((symbol) => {
    const quote = quotes.get(symbol) || {};
    return row([
      { text: symbol, className: 'mono' }, num(quote.bid), num(quote.ask), num(quote.last), time(quote.at),
      chart(symbol),
    ], symbol === changed ? 'flash' : '');
  }), 6, 'No symbols watched.');
}

document.getElementById('add-symbol').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = event.target.elements.symbol;
  const symbol = input.value.trim().toUpperCase();
  if (symbol) watch(symbol);
  input.value = '';
});

renderQuotes();
connect();
poll();
