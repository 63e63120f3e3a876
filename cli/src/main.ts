/**
 * `keyfleet` — run through tsx (`npm run keyfleet -- <command>`, or the
 * package's bin). Errors print one line (the gRPC status message when there
 * is one) and exit 1; `--json` errors print {"error": ...}.
 */
import { createProgram } from './program.js';

const program = createProgram();
try {
  await program.parseAsync(process.argv);
} catch (error) {
  const message = (error as { details?: string }).details || (error as Error).message;
  if (program.opts<{ json?: boolean }>().json) console.error(JSON.stringify({ error: message }));
  else console.error(`keyfleet: ${message}`);
  process.exitCode = 1;
}
