// Strings live in public/i18n/<lang>.json (one file per language); the language comes from
// navigator.language, a toggle switches it and the choice is remembered.
export const LANGS = ['en', 'zh-CN'];
let strings = {};
let current = 'en';

export function pickLanguage(stored, navigatorLanguage) {
  if (LANGS.includes(stored)) return stored;
  return /^zh/i.test(navigatorLanguage || '') ? 'zh-CN' : 'en';
}

export async function setLanguage(lang) {
  strings = await (await fetch(`i18n/${lang}.json`)).json();
  current = lang;
  document.documentElement.lang = lang;
  try { localStorage.setItem('neometer.lang', lang); } catch { /* private mode */ }
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  return lang;
}

export const language = () => current;

export function t(key, vars = {}) {
  const s = strings[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}
