// Test doubles for the admission pipeline (unit tests and the webhook benchmark).
import winston from 'winston';
import type { ServiceAccountImport } from '../../../src/api/import.js';
import type { Logger } from '../../../src/logger.js';
import type { ImportLookup } from '../../../streams/webhook/lookup.js';
import { AdmissionPipeline, type AdmissionOutcome } from '../../../streams/webhook/pipeline.js';

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

/** A fixed set of imports, every one known at once (as the webhook's watch cache once synced). */
export class StaticImportLookup implements ImportLookup {
  private readonly items = new Map<string, ServiceAccountImport>();
  constructor(imports: ServiceAccountImport[]) {
    for (const sai of imports) this.items.set(`${sai.metadata.namespace ?? ''}/${sai.metadata.name}`, sai);
  }
  get(namespace: string, name: string): Promise<ServiceAccountImport | undefined> {
    return Promise.resolve(this.items.get(`${namespace}/${name}`));
  }
  known(namespace: string, name: string): { value: ServiceAccountImport | undefined } {
    return { value: this.items.get(`${namespace}/${name}`) };
  }
}

/** Admits one body through a fresh pipeline, closed afterwards. */
export async function admitOnce(opts: ConstructorParameters<typeof AdmissionPipeline>[0], body: unknown): Promise<AdmissionOutcome> {
  const p = new AdmissionPipeline(opts);
  const out = await p.admit(body);
  await p.close();
  return out;
}

/**
 * The admission's outcome if it is decided before the next turn of the event loop (no lookup, no
 * queue: only promise reactions), else 'pending'.
 */
export function decidedAtOnce(outcome: Promise<AdmissionOutcome>): Promise<AdmissionOutcome | 'pending'> {
  return Promise.race([outcome, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}
