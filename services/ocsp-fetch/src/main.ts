/**
 * The ocsp-fetch process: configuration from the environment (compiled once;
 * a bad value stops the process with the variable's name), one replica of the
 * service, graceful shutdown on SIGTERM or SIGINT.
 */
import { runServiceProcess } from '@keyfleet/service-kit';
import { compileOcspFetchConfig } from './config/ocsp-fetch-config.js';
import { createOcspFetchServer } from './ocsp-fetch-server.js';

runServiceProcess({
  name: 'ocsp-fetch',
  compileConfig: compileOcspFetchConfig,
  start: (config, logger, stopping) =>
    createOcspFetchServer({ ...config.server, logger, startAbort: stopping }),
});
