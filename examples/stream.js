// The integration guide's market-data client (the snippet between the markers is verbatim but for the URL).
// TRADEFENCE_STREAM_URL picks the server (default: the local emulator; append ?access_token=... to
// authenticate); the client stops after TRADEFENCE_STREAM_MESSAGES messages (default 10; 0 streams until Ctrl-C).
//
//   make mock-up                          # in another terminal
//   npm ci && node examples/stream.js
const url = process.env.TRADEFENCE_STREAM_URL || 'ws://127.0.0.1:8080/market-data';
const limit = Number(process.env.TRADEFENCE_STREAM_MESSAGES || 10);

// --- from the Tradefence Integration Guide, "1. Market Data Streaming" ---
const WebSocket = require('ws');

const ws = new WebSocket(url);

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
// --- end of the guide's snippet ---

let received = 0;
ws.on('message', () => {
  if (limit > 0 && ++received === limit) {
    ws.removeAllListeners('message'); // messages already on their way are not printed
    ws.close();
  }
});

ws.on('error', (error) => {
  console.error(`market-data stream: ${error.message}`);
  process.exitCode = 1;
});
