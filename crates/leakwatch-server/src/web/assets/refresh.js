// Keeps a page's running section current while something runs: every few
// seconds it fetches the page again and swaps in the new section, leaving
// focus and scrolling alone. When nothing runs any more, the page's main
// content is swapped once and polling stops. Without this script, reloading
// the page does the same.
'use strict';
(function () {
  const section = document.querySelector('[data-refresh]');
  if (!section) return;
  const seconds = Math.max(1, Number(section.getAttribute('data-refresh')) || 2);
  async function poll() {
    let html;
    try {
      const answer = await fetch(location.href, { credentials: 'same-origin', cache: 'no-store' });
      if (!answer.ok) return;
      html = await answer.text();
    } catch (e) {
      setTimeout(poll, seconds * 1000);
      return;
    }
    const next = new DOMParser().parseFromString(html, 'text/html');
    const fresh = next.getElementById(section.id);
    if (fresh && fresh.hasAttribute('data-refresh')) {
      section.innerHTML = fresh.innerHTML;
      setTimeout(poll, seconds * 1000);
    } else {
      const main = next.querySelector('main');
      if (main) document.querySelector('main').innerHTML = main.innerHTML;
    }
  }
  setTimeout(poll, seconds * 1000);
})();
