/**
 * Cuts a stream of text into lines of at most `maxLength` characters: a line longer than that
 * (output with no newline, such as `yes | tr -d '\n'`) comes out in pieces as it arrives, so
 * every character reaches the log's size limit and nothing waits, growing, for a newline.
 */
export class LineSplitter {
  private partial = '';

  constructor(private readonly maxLength: number) {}

  /** The lines `text` completes, in order. */
  push(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      lines.push(...this.cut(this.partial + text.slice(start, end)));
      this.partial = '';
      start = end + 1;
    }
    this.partial += text.slice(start);
    while (this.partial.length >= this.maxLength) {
      lines.push(this.partial.slice(0, this.maxLength));
      this.partial = this.partial.slice(this.maxLength);
    }
    return lines;
  }

  /** What is left without a newline at the end of the stream. */
  flush(): string[] {
    const rest = this.partial;
    this.partial = '';
    return rest ? [rest] : [];
  }

  private cut(line: string): string[] {
    if (line.length <= this.maxLength) return [line];
    const pieces: string[] = [];
    for (let i = 0; i < line.length; i += this.maxLength) {
      pieces.push(line.slice(i, i + this.maxLength));
    }
    return pieces;
  }
}
