// A child process for streams-watch.test.ts: LIST+WATCH a namespace's ConfigMaps through the
// production transport, wait for the cache to sync, stop, and then exit on its own. It prints the
// handles keeping its event loop alive (TCP sockets) before, during and after the watch, one JSON
// line; the parent checks that after stopping nothing of the watch keeps the process alive.
import { KubeConfig } from '@kubernetes/client-node';
import { SharedCache, namespacedKey } from '../../streams/cache.js';
import { listWatch } from '../../streams/watch.js';

const [kubeconfigPath, context, namespace] = process.argv.slice(2);
if (!kubeconfigPath || !context || !namespace) throw new Error('usage: watch-then-stop.ts <kubeconfig> <context> <namespace>');

const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
const before = sockets();
const kc = new KubeConfig();
kc.loadFromFile(kubeconfigPath);
kc.setCurrentContext(context);
const source = listWatch({ kubeConfig: kc, path: `/api/v1/namespaces/${namespace}/configmaps`, project: (raw) => raw as { metadata: { name: string; namespace: string } }, describe: 'watch-then-stop' });
const cache = new SharedCache(source, { keyOf: namespacedKey, describe: 'watch-then-stop' });
cache.start();
await cache.waitForSync(20_000);
// The watch request follows the LIST: wait (bounded) until its connection counts.
const until = async (done: () => boolean) => {
  const deadline = Date.now() + 5_000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
};
await until(() => sockets() > before);
const during = sockets();
cache.stop();
await until(() => sockets() <= before);
console.log(JSON.stringify({ before, during, after: sockets() }));
// No process.exit: the parent waits for this process to end by itself.
