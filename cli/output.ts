// Command output on stdout for commands that may print a lot (shard dump, shard verify). It
// waits for the pipe to drain, so a large dump does not pile up in memory, and it treats a
// reader that went away (EPIPE, as with `| head`) as the end of the output rather than a crash.
export class Output {
  private readerGone = false;
  private failure: Error | null = null;

  constructor(private readonly stream: NodeJS.WritableStream = process.stdout) {
    // Without a listener, an EPIPE error event would crash the process with a stack trace.
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') this.readerGone = true;
      else this.failure = error;
    });
  }

  /** Writes `text`; false once the reader has gone, so the caller stops producing. */
  async write(text: string): Promise<boolean> {
    if (this.failure !== null) throw this.failure;
    if (this.readerGone) return false;
    if (!this.stream.write(text)) await this.drained();
    return !this.readerGone;
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('error', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('error', done);
      this.stream.on('close', done);
    });
  }
}
