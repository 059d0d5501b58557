#!/usr/bin/env node
// DEMO ONLY: a stand-in for an identity provider. It hands ANYONE a token for ANY user, so
// that the example runs without one. Never run it where a real stream is guarded.
//
// At start it makes a P-256 key pair (the private half lives in this process only), writes
// the public half as a JWK Set to jwks.json next to this file (zilla.yaml's guard reads it),
// then serves:
//
//   GET /token?sub=alice&ttl=60&scope=proxy:stream  →  an ES256 JWT (text/plain)
//
// with the issuer and audience zilla.yaml expects, `exp` ttl seconds from now (1..3600,
// default 60) and the scope given (default proxy:stream). CORS is open (the page on :7114
// asks :7115). Port: ISSUER_PORT, default 7115.
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

const port = Number(process.env.ISSUER_PORT || 7115);
const jwksPath = fileURLToPath(new URL('jwks.json', import.meta.url));
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
writeFileSync(jwksPath, JSON.stringify({ keys: [{ kty, crv, x, y, kid: 'demo', alg: 'ES256', use: 'sig' }] }, null, 2) + '\n');

const b64 = (bytes) => Buffer.from(bytes).toString('base64url');

const token = (sub, ttl, scope) => {
  const now = Math.floor(Date.now() / 1000);
  const header = b64(JSON.stringify({ alg: 'ES256', kid: 'demo', typ: 'JWT' }));
  const claims = b64(JSON.stringify({
    iss: 'https://auth.example.com', aud: 'https://api.example.com',
    sub, scope, iat: now, exp: now + ttl,
  }));
  const input = `${header}.${claims}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64(signature)}`;
};

createServer((request, response) => {
  const url = new URL(request.url, 'http://localhost');
  if (request.method !== 'GET' || url.pathname !== '/token') {
    response.writeHead(404).end();
    return;
  }
  const sub = url.searchParams.get('sub') || 'alice';
  const ttl = Math.min(Math.max(Math.floor(Number(url.searchParams.get('ttl'))) || 60, 1), 3600);
  const scope = url.searchParams.get('scope') ?? 'proxy:stream';
  response.writeHead(200, {
    'content-type': 'text/plain',
    'cache-control': 'no-store',
    'access-control-allow-origin': '*',
  }).end(token(sub, ttl, scope));
}).listen(port, () => {
  console.log(`issuer: wrote ${jwksPath}; tokens at http://localhost:${port}/token?sub=alice`);
});
