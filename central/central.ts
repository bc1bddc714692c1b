/** Wires config → store → broker → ingest → route → notify → voice. */
import type { Central } from './core.js';
import type { CentralConfig } from './config/schema.js';

export async function startCentral(config: CentralConfig): Promise<Central> {
  void config;
  throw new Error('startCentral: not implemented yet');
}
