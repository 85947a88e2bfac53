/** HTML that is already safe: markup written in this code base, or text escaped by `html`. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** `text` safe inside HTML text and quoted attributes. */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

type Value = Html | string | number | boolean | undefined | null | readonly Value[];

const render = (value: Value): string =>
  value instanceof Html
    ? value.text
    : Array.isArray(value)
      ? value.map(render).join('')
      : value === undefined || value === null || value === false
        ? ''
        : escapeHtml(String(value as string | number | boolean));

/**
 * The pages' template tag: every interpolated value is escaped unless it is `Html` (another
 * `html` template's result), so user input never becomes markup. Arrays are joined; `undefined`,
 * `null` and `false` render as nothing, for optional parts.
 */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let text = strings[0] ?? '';
  values.forEach((value, i) => {
    text += render(value) + (strings[i + 1] ?? '');
  });
  return new Html(text);
}
