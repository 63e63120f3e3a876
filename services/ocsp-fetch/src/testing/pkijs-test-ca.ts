/** The in-process pkijs test PKI now lives beside the OCSP validator in @keyfleet/tls-engine. */
export * from '@keyfleet/tls-engine/testing';
