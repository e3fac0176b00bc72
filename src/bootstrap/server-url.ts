import { isIP } from 'node:net';

/**
 * A warning when the source server URL the registration will hold is a loopback address, which
 * the controller in the target reaches only when it runs in the source's own network namespace
 * (e.g. both clusters' API servers and the controller as processes on one host). kind and
 * minikube kubeconfigs point at 127.0.0.1: from a pod of another cluster that is the pod itself.
 * Undefined for any other address, and for a URL that does not parse (the API server will say).
 */
export function loopbackServerWarning(server: string, sourceLabel: string): string | undefined {
  let host: string;
  try {
    host = new URL(server).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return undefined;
  }
  const loopback =
    host === 'localhost' || host.endsWith('.localhost') || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1' || host === '0.0.0.0' || host === '::' || /^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(host);
  if (!loopback) return undefined;
  return (
    `warning: ${sourceLabel}'s server URL ${server} is a loopback address: the controller in the target ` +
    `reaches it only if it runs on the source's own host network. Pass the address the target's pods can reach ` +
    `with --source-server (for kind: https://<source cluster>-control-plane:6443, the control plane's name on the ` +
    `shared "kind" network).`
  );
}
