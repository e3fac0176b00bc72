// Integration tests talk to real clusters: give each test a minute unless it says otherwise.
import { jest } from '@jest/globals';

jest.setTimeout(60_000);
