// nnote's one script; every page works without it.
"use strict";
(() => {
  const $$ = (s) => document.querySelectorAll(s), MIN = 6e4;
  const day = (t) => new Date(t).setHours(0, 0, 0, 0);
  const full = new Intl.DateTimeFormat([], { dateStyle: "full", timeStyle: "short" });

  // Times read "3 min ago"; the full local date and time on hover.
  function ago(t, now) {
    const min = Math.floor((now - t) / MIN), days = Math.round((day(now) - day(t)) / 864e5);
    if (min < 60) return min < 1 ? "just now" : min + " min ago";
    if (days < 2) return days ? "yesterday" : Math.floor(min / 60) + " h ago";
    const year = t.getFullYear() === new Date(now).getFullYear() ? undefined : "numeric";
    return t.toLocaleDateString([], { day: "numeric", month: "short", year });
  }
  function showTimes() {
    for (const el of $$("time[datetime]")) {
      const t = new Date(el.dateTime.replace(" ", "T"));
      if (isNaN(t)) continue;
      el.title = full.format(t);
      el.textContent = ago(t, Date.now());
    }
  }

  // Drafts, kept per account and form as typed, go when the next page says the note was
  // stored (a flash with data-saved), not on submit: a submit fails if the session ended.
  const user = document.body.dataset.user, prefix = "nnote:draft:" + user + ":";
  const SENT = "nnote:sent", drafts = new Map();
  let local, tab; // undefined where storage is off
  try { [local, tab] = [localStorage, sessionStorage]; } catch { /* no drafts */ }
  const keep = (key, draft) =>
    draft ? local?.setItem(key, JSON.stringify(draft)) : local?.removeItem(key);

  function enhance(form) {
    const fresh = form.classList.contains("new-note");
    const key = prefix + (fresh ? "new" : location.pathname);
    const fields = [...form.elements].filter((f) => f.name && /^(textarea|text)$/.test(f.type));
    const original = (f) => (fresh ? "" : f.defaultValue);
    const changed = () => fields.some((f) => f.value !== original(f));
    const cancel = [...form.querySelectorAll("a")].find((a) => a.textContent.trim() === "Cancel");
    let draft = {};
    try { draft = Object(JSON.parse(local.getItem(key))); } catch { /* none */ }
    if (!changed() && fields.some((f) => f.name in draft && draft[f.name] !== f.value)) {
      for (const f of fields) if (f.name in draft) f.value = draft[f.name];
      const hint = document.createElement("p");
      hint.className = "draft-hint";
      hint.textContent = "Draft restored.";
      form.querySelector("textarea").after(hint);
    }
    form.addEventListener("input", () =>
      keep(key, changed() && Object.fromEntries(fields.map((f) => [f.name, f.value]))));
    form.addEventListener("submit", () => tab?.setItem(SENT, key));
    cancel?.addEventListener("click", () => keep(key));
    drafts.set(form, { changed, cancel });
  }

  // Ctrl/Cmd+Enter sends the textarea's form; "/" goes to the search box; Esc leaves an edit.
  function onKey(e) {
    const t = e.target, q = document.getElementById("q"), draft = drafts.get(t.form);
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.type === "textarea") {
      e.preventDefault();
      t.form?.requestSubmit();
    } else if (e.key === "/" && q && !(e.ctrlKey || e.metaKey || e.altKey)
        && !t.isContentEditable && !/^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)) {
      e.preventDefault();
      q.focus();
      q.select();
    } else if (e.key === "Escape" && draft?.cancel && !e.isComposing
        && (!draft.changed() || confirm("Discard your changes to this note?"))) {
      draft.cancel.click();
    }
  }

  const sent = tab?.getItem(SENT);
  if (sent && document.querySelector(".flash[data-saved]")) keep(sent);
  tab?.removeItem(SENT);
  if (user) {
    for (const area of $$("form[method=post] textarea")) enhance(area.form);
    // Logging out leaves no text of the account in this browser.
    for (const form of $$("form[action$='/auth/logout']")) {
      form.addEventListener("submit", () => {
        for (const key of Object.keys(local || {})) if (key.startsWith(prefix)) keep(key);
      });
    }
  }
  showTimes();
  setInterval(showTimes, MIN);
  document.addEventListener("keydown", onKey);
})();
