// Reads events from an SSE URL with the `eventsource` package (the WHATWG EventSource API for
// Node) until it has the number asked for, reconnecting as a browser would; prints them as JSON.
//   node eventsource.mjs URL COUNT [TIMEOUT_MS]   (default 20000)
import { EventSource } from 'eventsource';

const [url, wanted] = [process.argv[2], Number(process.argv[3])];
const timeoutMs = Number(process.argv[4] ?? 20000);
const events = [];
let opens = 0;
const source = new EventSource(url);
source.onopen = () => {
  opens += 1;
};
source.onmessage = (event) => {
  events.push({ id: event.lastEventId, data: event.data });
  if (events.length === wanted) {
    source.close();
    console.log(JSON.stringify({ opens, events }));
    process.exit(0);
  }
};
// Errors (including the end of a response) are followed by a reconnection, as in browsers.
source.onerror = () => {};
setTimeout(() => {
  console.error(`timed out with ${JSON.stringify({ opens, events })}`);
  process.exit(1);
}, timeoutMs);
