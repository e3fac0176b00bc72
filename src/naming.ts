import { createHash } from 'node:crypto';
import { MOUNT_ROOT } from './constants.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A DNS-1123 subdomain (most object names): at most 253 characters. */
export function isDns1123Subdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** Why `s` is not a DNS-1123 subdomain, or undefined when it is one. */
export function dns1123SubdomainError(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 253) return `must be at most 253 characters (has ${s.length})`;
  if (!DNS1123_SUBDOMAIN.test(s))
    return "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** Why `s` is not a DNS-1123 label, or undefined when it is one. */
export function dns1123LabelError(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `must be at most 63 characters (has ${s.length})`;
  if (!DNS1123_LABEL.test(s))
    return "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
  return undefined;
}

// Kubernetes' own "safe" alphabet for generated suffixes: no vowels, no look-alikes.
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** A short deterministic hash of `input` in Kubernetes' safe alphabet. */
export function shortHash(input: string, length = 5): string {
  const digest = createHash('sha256').update(input).digest();
  let out = '';
  for (let i = 0; i < length; i++) out += SAFE_ALPHABET[digest[i]! % SAFE_ALPHABET.length];
  return out;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * A label value standing for a name (an import, a cluster): the name itself when it is a valid
 * label value (at most 63 characters), else a truncated prefix plus a hash of the whole name, so
 * distinct names keep distinct values. Label values stop at 63 characters; object names (DNS-1123
 * subdomains) go to 253. Where the full name matters it is kept in an annotation beside the label.
 */
export function labelValueFor(name: string): string {
  if (name.length <= 63 && LABEL_VALUE.test(name)) return name;
  const suffix = `-${shortHash(name, 8)}`;
  return name.slice(0, 63 - suffix.length).replace(/[^A-Za-z0-9]+$/, '') + suffix;
}

/** The value of the import label (`multicluster.admiralty.io/service-account-import.name`) for an import. */
export function importLabelValue(importName: string): string {
  return labelValueFor(importName);
}

function trimToAlnumEnd(s: string): string {
  return s.replace(/[-.]+$/, '');
}

/**
 * `name` when it fits an object name (253 characters), else cut to fit with `-<hash of hashOf>`
 * appended (by default of the whole name), so distinct long names stay distinct.
 */
export function fitObjectName(name: string, hashOf = name): string {
  if (name.length <= 253) return name;
  const suffix = `-${shortHash(hashOf, 8)}`;
  return trimToAlnumEnd(name.slice(0, 253 - suffix.length)) + suffix;
}

/** `<import>-<infix>-<hash of the import name>`, the import name cut so the whole is at most 253 characters. */
function generatedName(importName: string, infix: string): string {
  const suffix = `-${infix}-${shortHash(importName)}`;
  return trimToAlnumEnd(importName.slice(0, 253 - suffix.length)) + suffix;
}

/**
 * The generated Secret's name, from the import name alone (so the webhook can reference it before
 * it exists): `<import>-token-<hash>`, at most 253 characters, a valid DNS-1123 subdomain.
 */
export function secretNameForImport(importName: string): string {
  return generatedName(importName, 'token');
}

/**
 * The ConfigMap of a federated import (server, CA, kubeconfig; ADR 0022), from the import name
 * alone like the Secret's: `<import>-federated-<hash>`, at most 253 characters.
 */
export function configMapNameForImport(importName: string): string {
  return generatedName(importName, 'federated');
}

/**
 * The pod volume name for an import: a DNS-1123 label (≤ 63 characters), deterministic, and
 * distinct for distinct import names (the hash covers the full name).
 */
export function volumeNameForImport(importName: string): string {
  const suffix = `-${shortHash(importName)}`;
  const prefix = 'mcsa-';
  const body = trimToAlnumEnd(importName.replace(/\./g, '-').slice(0, 63 - prefix.length - suffix.length));
  return `${prefix}${body}${suffix}`;
}

/** The directory an import is mounted at inside a pod. */
export function mountPathForImport(importName: string, root = MOUNT_ROOT): string {
  return `${root}/${importName}`;
}
