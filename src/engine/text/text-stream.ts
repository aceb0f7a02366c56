/** Turning a stream of token ids into text pieces: incremental detokenization, then stop sequences. */

/**
 * Incremental detokenization. Byte-level BPE tokens may split a UTF-8 character, so text is only released
 * when the decoded suffix does not end in U+FFFD. To stay cheap it decodes a short window, as Hugging Face
 * TGI does: `prefix..read` is text already released (kept as context so tokenizers that depend on the
 * previous token decode the same), `read..end` is what is new.
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  private prefix = 0;
  private read = 0;

  constructor(private readonly decode: (ids: number[]) => string) {}

  /** Adds a token; returns the text it completes ("" while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    return this.release(false);
  }

  /** Everything not yet released, incomplete characters included (as U+FFFD). */
  flush(): string {
    return this.release(true);
  }

  private release(force: boolean): string {
    const before = this.decode(this.ids.slice(this.prefix, this.read));
    const now = this.decode(this.ids.slice(this.prefix));
    if (now.length > before.length && (force || !now.endsWith("\uFFFD"))) {
      this.prefix = this.read;
      this.read = this.ids.length;
      return now.slice(before.length);
    }
    return "";
  }
}

/**
 * Stop sequences: text that could still turn out to be the start of a stop sequence is held back until that
 * is decided; a completed stop sequence ends the stream, and neither it nor anything after it is released.
 */
export class StopMatcher {
  private held = "";

  constructor(private readonly stops: readonly string[]) {}

  /** Adds text; returns what may be released now and whether a stop sequence completed. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    const pending = this.held + text;
    let cut = -1;
    for (const stop of this.stops) {
      const at = pending.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.held = "";
      return { text: pending.slice(0, cut), stopped: true };
    }
    // Hold the longest suffix that is a proper prefix of a stop sequence.
    let keep = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, pending.length); k > keep; k--) {
        if (pending.endsWith(stop.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    this.held = pending.slice(pending.length - keep);
    return { text: pending.slice(0, pending.length - keep), stopped: false };
  }

  /** The stream ended without a stop sequence: what was held back is ordinary text after all. */
  flush(): string {
    const held = this.held;
    this.held = "";
    return held;
  }
}
