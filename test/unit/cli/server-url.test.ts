import { describe, expect, it } from '@jest/globals';
import { loopbackServerWarning } from '../../../src/bootstrap/server-url.js';

describe('loopbackServerWarning', () => {
  it.each(['https://127.0.0.1:6443', 'https://127.0.1.1', 'https://localhost:33445', 'https://api.localhost', 'https://[::1]:6443', 'https://0.0.0.0:6443', 'https://[::ffff:127.0.0.1]:6443', 'https://LOCALHOST:6443'])(
    'warns about %s, naming the URL, the cluster and --source-server',
    (server) => {
      const w = loopbackServerWarning(server, 'source cluster "kind-b"');
      expect(w).toContain(server);
      expect(w).toContain('source cluster "kind-b"');
      expect(w).toContain('--source-server');
      expect(w).toMatch(/^warning: /);
    },
  );

  it.each(['https://10.0.0.1:6443', 'https://192.168.49.2:8443', 'https://kind-b-control-plane:6443', 'https://api.example.com', 'https://[fd00::1]:6443', 'https://128.0.0.1', 'not a url'])('says nothing about %s', (server) => {
    expect(loopbackServerWarning(server, 'x')).toBeUndefined();
  });
});
