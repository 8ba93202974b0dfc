// The Tradefence Integration Guide's JavaScript snippets, run as one Node script against the emulator:
// placeOrder, getOrderStatus, getAIRecommendations, batchUpdate and the market-data stream.
//
//   make mock-up                                   # in another terminal
//   npm ci && node examples/docs_snippets.js [BASE_URL]
//
// The base URL comes from the first argument, else TRADEFENCE_BASE_URL, else http://127.0.0.1:8080. Each
// snippet is the guide's but for its URL (https://api.tradefence.com/v1 becomes `${API}`,
// wss://stream.tradefence.com becomes `${STREAM}`). Two more changes, both marked: the guide's batch body has
// `{...}` placeholders, which are not JavaScript, so batchUpdate sends the operations it is given; and the
// stream snippet closes after a few messages so that the script ends. The access token comes from the OAuth 2.0
// code flow with PKCE, as the guide's "Authentication" section describes (fetch with redirect: 'manual' reads the
// code from the 302 that /authorize answers at once). Node >= 20 (global fetch) and `ws` (npm ci).
'use strict';

const crypto = require('node:crypto');

const BASE = (process.argv[2] || process.env.TRADEFENCE_BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const API = `${BASE}/v1`;
const STREAM = BASE.replace(/^http/, 'ws');
const CLIENT_ID = 'sandbox-client';
const CLIENT_SECRET = 'sandbox-secret';
const REDIRECT_URI = 'http://127.0.0.1:5000/callback';

let accessToken;

// --- Authentication: the authorization-code flow, with PKCE -------------------------------------------------
const base64url = (bytes) => bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

const logIn = async () => {
  const verifier = base64url(crypto.randomBytes(48));
  const challenge = base64url(crypto.createHash('sha256').update(verifier).digest());
  const state = base64url(crypto.randomBytes(12));
  const query = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'trading:read trading:write',
    state,
    login_hint: `docs-js-${crypto.randomBytes(4).toString('hex')}`, // a fresh sandbox user every run
    code_challenge: challenge,
    code_challenge_method: 'S256'
  });
  const redirect = await fetch(`${BASE}/authorize?${query}`, { redirect: 'manual' });
  if (redirect.status !== 302) throw new Error(`/authorize answered ${redirect.status}`);
  const callback = new URL(redirect.headers.get('location')).searchParams;
  if (callback.get('state') !== state) throw new Error('state mismatch: not our authorization request');
  if (!callback.get('code')) throw new Error(`authorization refused: ${callback}`);

  const response = await fetch(`${BASE}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: callback.get('code'),
      redirect_uri: REDIRECT_URI,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      code_verifier: verifier
    })
  });
  const token = await response.json();
  if (!response.ok) throw new Error(`/token answered ${response.status}: ${JSON.stringify(token)}`);
  return token;
};

// --- from the guide, "2. Trading Operations": Place Order ----------------------------------------------------
const placeOrder = async (orderData) => {
  const response = await fetch(`${API}/orders`, {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${accessToken}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      symbol: 'AAPL',
      type: 'LIMIT',
      side: 'BUY',
      quantity: 100,
      price: 150.50,
      strategy: 'OPTION_SELLING'
    })
  });

  return await response.json();
};

// --- from the guide: Get Order Status -------------------------------------------------------------------------
const getOrderStatus = async (orderId) => {
  const response = await fetch(
    `${API}/orders/${orderId}`,
    {
      headers: {
        'Authorization': `Bearer ${accessToken}`
      }
    }
  );

  return await response.json();
};

// --- from the guide, "3. AI Strategy Integration" -------------------------------------------------------------
const getAIRecommendations = async (params) => {
  const response = await fetch(
    `${API}/ai/recommendations`,
    {
      method: 'POST',
      headers: {
        'Authorization': `Bearer ${accessToken}`,
        'Content-Type': 'application/json'
      },
      body: JSON.stringify({
        portfolio: params.portfolio,
        risk_tolerance: 'MODERATE',
        time_horizon: '30_DAYS'
      })
    }
  );

  return await response.json();
};

// --- from the guide, "Data Synchronization": Batch Updates ----------------------------------------------------
const batchUpdate = async (operations) => {
  const response = await fetch(
    `${API}/batch`,
    {
      method: 'POST',
      headers: {
        'Authorization': `Bearer ${accessToken}`,
        'Content-Type': 'application/json'
      },
      body: JSON.stringify({
        operations // changed: the guide lists CREATE_ORDER, UPDATE_POSITION, CANCEL_ORDER with `data: {...}`
      })
    }
  );

  return await response.json();
};

// --- from the guide, "1. Market Data Streaming" ---------------------------------------------------------------
const streamMarketData = (limit) => new Promise((resolve, reject) => {
  const WebSocket = require('ws');

  const ws = new WebSocket(`${STREAM}/market-data`);

  ws.on('open', () => {
    ws.send(JSON.stringify({
      action: 'subscribe',
      symbols: ['AAPL', 'GOOGL', 'MSFT']
    }));
  });

  ws.on('message', (data) => {
    const marketData = JSON.parse(data);
    console.log(marketData);
  });
  // --- end of the guide's snippet; added: stop after `limit` messages ---
  let received = 0;
  ws.on('message', () => {
    if (++received === limit) {
      ws.removeAllListeners('message');
      ws.close();
    }
  });
  ws.on('close', () => resolve(received));
  ws.on('error', reject);
});

// --- the script ------------------------------------------------------------------------------------------------
const expectOk = (label, body) => {
  if (body && body.error) throw new Error(`${label}: ${JSON.stringify(body.error)}`);
  return body;
};

const main = async () => {
  const token = await logIn();
  accessToken = token.access_token;
  console.log(`authorized: ${token.token_type} token, scope '${token.scope}'`);

  const order = expectOk('placeOrder', await placeOrder());
  console.log(`placeOrder -> ${order.id} ${order.status} (${order.side} ${order.quantity} ${order.symbol} ` +
              `${order.type} at ${order.price})`);

  const status = expectOk('getOrderStatus', await getOrderStatus(order.id));
  console.log(`getOrderStatus -> ${status.id} ${status.status}, ${status.filled_quantity} filled`);

  const advice = expectOk('getAIRecommendations', await getAIRecommendations({
    portfolio: [{ symbol: 'AAPL', quantity: 100 }, { symbol: 'MSFT', quantity: 40 }]
  }));
  for (const item of advice.recommendations) {
    console.log(`getAIRecommendations -> ${item.symbol} ${item.action} (confidence ${item.confidence})`);
  }

  // The guide's three actions. An order is cancelled by id, so the order to cancel is the one the first batch
  // leaves resting (a buy limit far below the market).
  const first = expectOk('batchUpdate', await batchUpdate([
    { action: 'CREATE_ORDER', data: { symbol: 'MSFT', type: 'LIMIT', side: 'BUY', quantity: 10, price: 1.00 } },
    { action: 'UPDATE_POSITION', data: { symbol: 'AAPL', target_quantity: 50 } }
  ]));
  const second = expectOk('batchUpdate', await batchUpdate([
    { action: 'CANCEL_ORDER', data: { order_id: first.results[0].result.id } }
  ]));
  for (const batch of [first, second]) {
    const outcomes = batch.results.map((r) => `${r.action} ${r.status}${r.error ? ` (${r.error.code})` : ''}`);
    console.log(`batchUpdate -> ${batch.succeeded} succeeded, ${batch.failed} failed: ${outcomes.join(', ')}`);
    if (batch.failed) throw new Error(`batchUpdate: ${JSON.stringify(batch.results)}`);
  }

  // The acknowledgement, then the current quote and trade of each of the three symbols: sent at once on
  // subscribe, so these seven arrive even while the emulator's clock is frozen.
  const messages = await streamMarketData(7);
  console.log(`stream -> ${messages} messages`);
};

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exitCode = 1;
});
