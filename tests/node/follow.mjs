// Follows an SSE URL with the `eventsource` package (the WHATWG EventSource API for Node),
// reconnecting as a browser would, and prints one JSON line per open and per event as it comes,
// with the receive time: {"open":N,"t":MS} and {"t":MS,"id":ID,"data":DATA}. Exits 0 once it has
// COUNT events (never when COUNT is 0), 1 after TIMEOUT_MS.
//   node follow.mjs URL COUNT [TIMEOUT_MS]   (default 60000)
import { EventSource } from 'eventsource';

const [url, wanted] = [process.argv[2], Number(process.argv[3])];
const timeoutMs = Number(process.argv[4] ?? 60000);
let opens = 0;
let received = 0;
const source = new EventSource(url);
source.onopen = () => {
  opens += 1;
  console.log(JSON.stringify({ open: opens, t: Date.now() }));
};
source.onmessage = (event) => {
  received += 1;
  console.log(JSON.stringify({ t: Date.now(), id: event.lastEventId, data: event.data }));
  if (wanted > 0 && received === wanted) {
    source.close();
    process.exit(0);
  }
};
// Errors (including the end of a response) are followed by a reconnection, as in browsers.
source.onerror = () => {};
setTimeout(() => {
  console.error(`timed out after ${received} events and ${opens} opens`);
  process.exit(1);
}, timeoutMs);
