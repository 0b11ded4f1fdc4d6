// Gauntlet's k6 scenario for a k6 binary without the SSE extension: k6/http buffers each
// response, so time to first token is approximated by time to first byte (k6's
// http_req_waiting) and inter-token gaps cannot be measured. The report says so.
import { attemptRequest, bufferedAttempt, config } from './lib.js';

export const options = config.options;

export default function (): void {
  attemptRequest(bufferedAttempt);
}
