// The home page (src/web/home-page.ts): copy buttons for the launch URL and badge markup.
'use strict';
/* global document, navigator, setTimeout */

for (const button of document.querySelectorAll('button[data-copy]')) {
  button.addEventListener('click', async () => {
    const field = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      // No clipboard API (a page not served over https): select it for Ctrl+C.
      field.select();
      document.execCommand('copy');
    }
    button.textContent = 'Copied';
    setTimeout(() => (button.textContent = 'Copy'), 2000);
  });
}

// A pasted https://github.com/… (or GitLab, gist) address picks its host in the list at once;
// the server reads it the same way when the form is sent.
const repo = document.getElementById('repo');
const provider = document.getElementById('provider');
repo?.addEventListener('input', () => {
  const host = /^https?:\/\/([^/]+)\//i.exec(repo.value.trim())?.[1]?.toLowerCase();
  if (!host) return;
  provider.value =
    host === 'github.com'
      ? 'gh'
      : host === 'gitlab.com'
        ? 'gl'
        : host === 'gist.github.com'
          ? 'gist'
          : 'git';
});
