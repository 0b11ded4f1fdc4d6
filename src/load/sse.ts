// Incremental Server-Sent Events parser (WHATWG EventSource rules) working on raw bytes:
// a response may be cut into chunks anywhere — inside a line, between CR and LF, inside a
// multi-byte character — and events come out the same. Lines are decoded only once complete.

export interface SseEvent {
  /** The `event:` field, or "message" when absent. */
  event: string;
  /** All `data:` lines of the event joined with "\n". */
  data: string;
  id?: string;
}

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder('utf-8');

export class SseParser {
  private partial: Buffer[] = [];
  private partialLength = 0;
  private skipLeadingLf = false;
  private data: string[] = [];
  private eventName = '';
  private id: string | undefined;
  private hasField = false;
  /** Bytes of incomplete trailing line still buffered (for "ended mid-event" checks). */
  get pendingBytes(): number {
    return this.partialLength;
  }
  /** True when a field has been read but its event not yet dispatched by a blank line. */
  get inEvent(): boolean {
    return this.hasField || this.partialLength > 0;
  }

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(chunk: Uint8Array): void {
    let start = 0;
    let i = 0;
    if (this.skipLeadingLf && chunk.length > 0) {
      this.skipLeadingLf = false;
      if (chunk[0] === LF) start = i = 1;
    }
    for (; i < chunk.length; i++) {
      const b = chunk[i];
      if (b !== LF && b !== CR) continue;
      this.line(chunk.subarray(start, i));
      if (b === CR) {
        if (i + 1 < chunk.length) {
          if (chunk[i + 1] === LF) i++;
        } else {
          this.skipLeadingLf = true;
        }
      }
      start = i + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.partial.push(Buffer.from(rest));
      this.partialLength += rest.length;
    }
  }

  private line(tail: Uint8Array): void {
    let bytes = tail;
    if (this.partialLength > 0) {
      this.partial.push(Buffer.from(tail));
      bytes = Buffer.concat(this.partial, this.partialLength + tail.length);
      this.partial = [];
      this.partialLength = 0;
    }
    if (bytes.length === 0) {
      this.dispatch();
      return;
    }
    const text = decoder.decode(bytes);
    if (text.charCodeAt(0) === 0x3a /* ':' comment */) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.hasField = true;
        break;
      case 'event':
        this.eventName = value;
        this.hasField = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        this.hasField = true;
        break;
      default:
        // `retry` and unknown fields are ignored, as the spec says.
        break;
    }
  }

  private dispatch(): void {
    if (this.data.length > 0) {
      const ev: SseEvent = { event: this.eventName || 'message', data: this.data.join('\n') };
      if (this.id !== undefined) ev.id = this.id;
      this.onEvent(ev);
    }
    this.data = [];
    this.eventName = '';
    this.hasField = false;
  }
}
