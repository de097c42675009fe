import { it } from 'vitest';
import { startTestApp } from '../../src/testing/test-app.js';
it('m', async () => {
  const server = await startTestApp('postgres', { LOG_LEVEL: 'error', ADMIN_TOKEN: 'fuzz-admin-token-0123456789abcdef' });
  for (const [ct, body] of [['multipart/form-data; boundary=x', '{}'], ['multipart/form-data', 'x'], ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\nabc\r\n--x--\r\n']]) {
    const r = await fetch(`${server.baseUrl}/mvp/audio`, { method: 'POST', headers: { authorization: 'Bearer fuzz-admin-token-0123456789abcdef', 'content-type': ct }, body });
    console.log(ct, r.status, await r.text());
  }
  await server.close();
}, 60000);
