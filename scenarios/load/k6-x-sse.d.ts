// Types for the xk6-sse extension (module k6/x/sse, phymbert/xk6-sse v0.1.x), as used here.
declare module 'k6/x/sse' {
  export interface SseEvent {
    id: string;
    name: string;
    data: string;
  }
  export interface SseClient {
    on(event: 'event', handler: (e: SseEvent) => void): void;
    on(event: 'error', handler: (e: { error(): string }) => void): void;
    on(event: 'open', handler: () => void): void;
    close(): void;
  }
  export interface SseParams {
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    tags?: Record<string, string>;
  }
  export interface SseResponse {
    status: number;
    error?: string;
    url: string;
  }
  const sse: { open(url: string, params: SseParams, setup: (client: SseClient) => void): SseResponse | undefined };
  export default sse;
}
