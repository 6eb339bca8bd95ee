// ITB CDS integration sandbox: sends CDS Hooks requests to the real service endpoints,
// renders the cards the way an EHR does, posts real feedback and shows the audit trail.
// Every value from a response is inserted as text; the one exception is card detail
// markdown, which the service renders with raw HTML disabled (POST /sandbox/api/markdown).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const fixtures = new Map();
  // The call whose results are on screen: {seq, service, hookInstance, status}. Each send
  // takes a new seq; anything that finishes for an older seq must not write to the page.
  let lastCall = null;
  let callSeq = 0;
  let authMode = "off";
  let publicBaseUrl = "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Only http(s) targets become links: a card must not be able to plant a javascript: URL.
  function safeUrl(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  // crypto.randomUUID needs a secure context; getRandomValues does not.
  function uuid4() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status" + (kind ? " status--" + kind : "");
  }

  function muted(text) {
    return el("p", { className: "muted", text });
  }

  // ---------------------------------------------------------------- wrapping

  // Text from the service wraps at sensible points only. A date (or date-time) and a number
  // with its unit are kept on one line: "2026-06-\n11" or "1000\nmcg/mL" misreads. Resource
  // references, setting names and URLs are long unbroken words that would push a card off a
  // narrow screen: they may wrap after "/", ".", "_", "=", "&" or "?" when a letter follows.
  const KEEP_TOGETHER = /\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?|\d+(?:\.\d+)?\s(?:mcg\/mL|mcg\/day|mg\/day|mg\/mL|mL\/day|mcg|mg|mL)(?![A-Za-z])/g;
  const NEEDS_CARE = new RegExp(`${KEEP_TOGETHER.source}|\\S{16,}`);
  const BREAK_AFTER = /(?<=[/._=&?])(?=[A-Za-z])/;

  function breakLongWords(text, parts) {
    for (const piece of text.split(/(\s+)/)) {
      if (piece.length < 16 || /\s/.test(piece)) {
        if (piece) parts.push(piece);
        continue;
      }
      piece.split(BREAK_AFTER).forEach((segment, i) => {
        if (i) parts.push(document.createElement("wbr"));
        parts.push(segment);
      });
    }
  }

  function softWrap(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) if (NEEDS_CARE.test(walker.currentNode.nodeValue)) nodes.push(walker.currentNode);
    for (const node of nodes) {
      const text = node.nodeValue;
      const parts = [];
      let done = 0;
      for (const match of text.matchAll(KEEP_TOGETHER)) {
        breakLongWords(text.slice(done, match.index), parts);
        parts.push(el("span", { className: "nobr", text: match[0] }));
        done = match.index + match[0].length;
      }
      breakLongWords(text.slice(done), parts);
      node.replaceWith(...parts);
    }
    return root;
  }

  // Each cell learns its column's header, so that a narrow screen can show a table as stacked
  // "header: value" rows (sandbox.css) instead of a table wider than the screen.
  function labelCells(table) {
    const headers = Array.from(table.querySelectorAll("thead th"), (th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      Array.from(row.cells).forEach((cell, i) => {
        if (headers[i]) cell.dataset.label = headers[i];
        if (!cell.textContent.trim()) cell.dataset.empty = "";
      });
    }
    table.classList.add("stackable");
    return table;
  }

  // ---------------------------------------------------------------- fixtures and service

  async function loadFixtures() {
    const response = await fetch("/sandbox/api/fixtures");
    if (!response.ok) return;
    const body = await response.json();
    for (const f of body.fixtures) fixtures.set(f.id, f);
  }

  function chosenFixture() {
    return fixtures.get($("fixture").value) || null;
  }

  function describeExpected(f) {
    return f.expected.length
      ? f.expected.map((e) => `${e.rule} ${e.outcome} (${e.indicator})`).join("; ")
      : "none";
  }

  // The story's expectations hold for the fixture's own service only: sent elsewhere, other
  // rules run on the chart and the page must not promise cards that will not come.
  function showExpectations() {
    const f = chosenFixture();
    const service = $("service").value;
    const warning = $("service-warning");
    showTokenAudience(service);
    if (!f) {
      warning.hidden = true;
      return;
    }
    const line = $("story-expected-line");
    if (f.service === service) {
      warning.hidden = true;
      line.replaceChildren("Expected cards: ", el("span", { id: "story-expected", text: describeExpected(f) }));
      return;
    }
    warning.textContent = `Expected cards will differ: this fixture is written for ${f.service}; ` +
      `${service} runs other rules on it, so the story's expected cards do not apply.`;
    warning.hidden = false;
    line.replaceChildren(`Expected cards: none predicted for ${service} (this fixture's cards ` +
      `come from ${f.service}).`);
  }

  async function chooseFixture() {
    const id = $("fixture").value;
    const story = $("story");
    const f = chosenFixture();
    if (!f) {
      story.hidden = true;
      showExpectations();
      if (!id) return;
    } else {
      $("story-title").textContent = f.title;
      $("story-text").textContent = f.story;
      story.hidden = false;
      $("service").value = f.service;
      showExpectations();
    }
    const response = await fetch(`/sandbox/api/fixtures/${encodeURIComponent(id)}/request`);
    if ($("fixture").value !== id) return; // another fixture was chosen meanwhile
    if (!response.ok) {
      setStatus(`Could not load fixture ${id} (HTTP ${response.status}).`, "error");
      return;
    }
    $("request-json").value = pretty(await response.json());
  }

  // ---------------------------------------------------------------- bearer token (jwt mode)

  function audienceFor(service) {
    return `${publicBaseUrl}/cds-services/${service}`;
  }

  function showTokenAudience(service) {
    if (authMode !== "jwt") return;
    $("token-aud").replaceChildren(softWrap(el("span", { text: audienceFor(service) })));
    $("token-feedback-aud").replaceChildren(softWrap(el("span", { text: `${audienceFor(service)}/feedback` })));
  }

  // The pasted token lives in the input only (this page's memory): it is never stored, never
  // written into the page, and forgotten once sent, since its jti works for one call only.
  function takeToken() {
    if (authMode !== "jwt") return null;
    const field = $("bearer-token");
    const token = field.value.trim().replace(/^Bearer\s+/i, "");
    field.value = "";
    $("token-state").textContent = token
      ? "The token was sent and forgotten: paste a new one for the next call."
      : "";
    return token || null;
  }

  function headersWith(token, extra) {
    const headers = { "Content-Type": "application/json", ...extra };
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  // ---------------------------------------------------------------- sending

  // Why the audit panel is empty when no record of the call can exist.
  const NOT_RECORDED = {
    400: "the service refused the request before running it (HTTP 400: not a valid CDS Hooks request)",
    401: "the service refused the request before running it (HTTP 401: no valid bearer token)",
    404: "the service refused the request before running it (HTTP 404: no such service)",
    413: "the service refused the request before running it (HTTP 413: the request is too large)",
  };

  function resetResults() {
    lastCall = null;
    $("cards").replaceChildren();
    $("audit").replaceChildren(muted("Waiting for the call…"));
    $("raw-request").textContent = "";
    $("raw-response").textContent = "";
  }

  function refuse(statusText, reason) {
    setStatus(statusText, "error");
    $("cards").replaceChildren(muted("Nothing was sent, so there are no cards."));
    $("audit").replaceChildren(muted(`No call was recorded: the request was refused before it reached the service (${reason}).`));
  }

  async function send(event) {
    event.preventDefault();
    const seq = ++callSeq;
    resetResults();
    const option = $("service").selectedOptions[0];
    const service = option.value;
    const fixture = chosenFixture();
    let request;
    try {
      request = JSON.parse($("request-json").value);
    } catch (err) {
      refuse(`The request is not valid JSON: ${err.message}`, "invalid JSON");
      $("request-json").focus();
      return;
    }
    if (request === null || typeof request !== "object" || Array.isArray(request)) {
      refuse("The request must be a JSON object.", "not a JSON object");
      return;
    }
    request.hook = option.dataset.hook;
    if ($("fresh-instance").checked || !request.hookInstance) request.hookInstance = uuid4();
    $("request-json").value = pretty(request);
    const token = takeToken();
    $("raw-request").textContent = `POST /cds-services/${service}\n` +
      (token ? `Authorization: Bearer (token hidden, ${token.length} characters)\n` : "") +
      `\n${pretty(request)}`;

    $("send").disabled = true;
    setStatus("Sending…");
    const started = performance.now();
    let response;
    let text;
    try {
      response = await fetch(`/cds-services/${encodeURIComponent(service)}`, {
        method: "POST",
        headers: headersWith(token, { Accept: "application/json" }),
        body: JSON.stringify(request),
      });
      text = await response.text();
    } catch (err) {
      $("send").disabled = false;
      setStatus(`The service could not be reached: ${err.message}`, "error");
      $("cards").replaceChildren(muted("No answer, so there are no cards."));
      $("audit").replaceChildren(muted("No call was recorded: the service could not be reached."));
      return;
    }
    const elapsed = Math.round(performance.now() - started);
    $("send").disabled = false;
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = null;
    }
    $("raw-response").textContent =
      `HTTP ${response.status} in ${elapsed} ms\n\n${body ? pretty(body) : text}`;
    lastCall = { seq, service, hookInstance: request.hookInstance, status: response.status,
                 signed: Boolean(token) };
    const elsewhere = fixture && fixture.service !== service ? fixture : null;
    const headline = `HTTP ${response.status} in ${elapsed} ms`;

    if (!response.ok || !body || !Array.isArray(body.cards)) {
      showFailure(response.status, body, headline);
      if (NOT_RECORDED[response.status]) {
        $("audit").replaceChildren(muted(`No call was recorded: ${NOT_RECORDED[response.status]}.`));
      } else {
        await refreshAudit(seq);
      }
      return;
    }
    const count = body.cards.length;
    setStatus(`${headline}: ${plural(count, "card")}.` + (elsewhere
      ? ` Sent to ${service}, not to ${elsewhere.service}: the story's expected cards do not apply.`
      : ""), elsewhere ? "warn" : "ok");
    await renderCards(body.cards, seq, service, elsewhere);
    await refreshAudit(seq);
  }

  function diagnostics(body) {
    const issues = (body && Array.isArray(body.issue)) ? body.issue : [];
    return issues.map((i) => i && i.diagnostics).filter((d) => typeof d === "string" && d);
  }

  function showFailure(status, body, headline) {
    const [first, ...rest] = diagnostics(body);
    const parts = [];
    if (status === 401) {
      const jwt = authMode === "jwt";
      setStatus(`${headline}: ${first || "unauthorized"}. ` + (jwt
        ? "This service runs with auth mode jwt: every call needs a signed bearer token."
        : "The service asked for a bearer token."), "error");
      parts.push(el("p", { text: "The call was refused before it reached the rules. What you can do:" }));
      parts.push(el("ul", {},
        el("li", { text: "Paste a bearer token under “Calls need a signed token” and send again. " +
          `Its aud must be ${audienceFor(lastCall.service)}, its iss an issuer the service trusts, ` +
          "its exp in the future and its jti not used before." }),
        el("li", { text: "Or, on your own machine, restart the service with ITB_CDS_AUTH_MODE=off." })));
    } else {
      setStatus(`${headline}${first ? ": " + first : ""}`, "error");
      parts.push(el("p", { text: status === 412
        ? "No cards: the service could not obtain the data its rules need."
        : "No cards: the service did not answer with cards." }));
      if (rest.length) parts.push(el("ul", {}, ...rest.map((d) => el("li", { text: d }))));
    }
    $("cards").replaceChildren(softWrap(el("div", { className: "problem", "data-status": String(status) }, ...parts)));
  }

  // ---------------------------------------------------------------- cards

  async function renderDetails(cards) {
    const texts = cards.map((c) => c.detail || "");
    if (!texts.some(Boolean)) return texts.map(() => "");
    const response = await fetch("/sandbox/api/markdown", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ markdown: texts }),
    });
    if (!response.ok) return null;
    return (await response.json()).html;
  }

  async function renderCards(cards, seq, service, elsewhere) {
    const container = $("cards");
    if (!cards.length) {
      container.replaceChildren(muted(elsewhere
        ? `No cards from ${service} for this request. The fixture expects its cards from ${elsewhere.service}.`
        : "No cards for this chart."));
      return;
    }
    const details = await renderDetails(cards);
    if (seq !== callSeq) return;
    container.replaceChildren(...cards.map((card, i) => renderCard(card, details && details[i])));
  }

  const INDICATOR_LABEL = { critical: "Critical", warning: "Warning", info: "Info" };

  function renderCard(card, detailHtml) {
    const finding = (card.extension && card.extension["itb-cds.finding"]) || {};
    const indicator = INDICATOR_LABEL[card.indicator] ? card.indicator : "info";
    const article = el("article", {
      className: `card card--${indicator}`,
      "data-card-uuid": card.uuid,
      "data-rule": finding.rule,
      "data-outcome": finding.outcome,
      "data-indicator": indicator,
      "aria-label": `${INDICATOR_LABEL[indicator]}: ${card.summary}`,
    });
    article.append(
      el("p", { className: "card__meta" },
        el("span", { className: `badge badge--${indicator}`, text: INDICATOR_LABEL[indicator] }),
        finding.rule ? el("span", { className: "rule", text: `${finding.rule} · ${finding.outcome}` }) : null),
      softWrap(el("h3", { className: "card__summary", text: card.summary })),
    );
    const body = el("div", { className: "card__body", id: `card-body-${card.uuid}` });
    if (card.detail) {
      const detail = el("div", { className: "card__detail" });
      if (typeof detailHtml === "string") detail.innerHTML = detailHtml; // escaped server-side
      else detail.textContent = card.detail;
      for (const table of detail.querySelectorAll("table")) {
        const scroller = el("div", { className: "table-scroll" });
        table.replaceWith(scroller);
        scroller.append(labelCells(table));
      }
      body.append(softWrap(detail));
    }
    if (card.source) {
      const url = card.source.url && safeUrl(card.source.url);
      const label = url
        ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: card.source.label })
        : el("span", { text: card.source.label });
      body.append(softWrap(el("p", { className: "card__source" }, "Source: ", label)));
    }
    const outcome = el("p", { className: "card__outcome", role: "status" });
    const controls = [];
    const settle = (kind, text) => settleCard(article, kind, text, outcome);

    if (card.suggestions && card.suggestions.length) {
      const group = el("div", { className: "card__suggestions", role: "group", "aria-label": "Suggestions" });
      for (const s of card.suggestions) {
        const button = el("button", {
          type: "button",
          className: s.isRecommended ? "suggestion suggestion--recommended" : "suggestion",
          "data-suggestion-uuid": s.uuid,
          text: s.label + (s.isRecommended ? " (recommended)" : ""),
        });
        button.addEventListener("click", () => accept(card, s, outcome, controls, settle));
        controls.push(button);
        group.append(button);
      }
      body.append(group);
    }
    if (card.links && card.links.length) {
      const list = el("ul", { className: "card__links" });
      for (const link of card.links) {
        const url = safeUrl(link.url);
        const suffix = link.type === "smart" ? " (SMART app, not launched from the sandbox)" : "";
        list.append(el("li", {},
          url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: link.label })
            : el("span", { text: link.label }),
          suffix));
      }
      body.append(softWrap(list));
    }
    body.append(renderDismiss(card, outcome, controls, settle));
    article.append(body, outcome);
    return article;
  }

  function renderDismiss(card, outcome, controls, settle) {
    const reasons = card.overrideReasons || [];
    const base = `dismiss-${card.uuid}`;
    const form = el("form", { className: "card__dismiss" });
    const select = el("select", { id: `${base}-reason` },
      el("option", { value: "", text: reasons.length ? "Choose a reason…" : "No reason" }),
      ...reasons.map((r, i) => el("option", { value: String(i), text: r.display || r.code })));
    const comment = el("input", { id: `${base}-comment`, type: "text", maxlength: "500" });
    const button = el("button", { type: "submit", className: "dismiss", text: "Dismiss card" });
    form.append(
      el("div", { className: "card__field card__field--reason" },
        el("label", { for: select.id, text: "Override reason" }), select),
      el("div", { className: "card__field" },
        el("label", { for: comment.id, text: "Comment (optional)" }), comment),
      button,
    );
    controls.push(select, comment, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (reasons.length && select.value === "") {
        outcome.textContent = "Choose an override reason first.";
        select.focus();
        return;
      }
      const reason = select.value === "" ? null : reasons[Number(select.value)];
      override(card, reason, comment.value.trim(), outcome, controls, settle);
    });
    return form;
  }

  // A card with feedback given folds to its summary and outcome, as an EHR removes a handled
  // card from the clinician's way; its content can still be looked at.
  function settleCard(article, kind, text, outcome) {
    const hadFocus = article.contains(document.activeElement);
    outcome.textContent = text;
    article.dataset.feedback = kind;
    article.classList.add("card--settled");
    const toggle = el("button", {
      type: "button", className: "card__toggle", "aria-expanded": "false",
      "aria-controls": article.querySelector(".card__body").id,
      text: "Show card details",
    });
    toggle.addEventListener("click", () => {
      const open = article.classList.toggle("card--open");
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Hide card details" : "Show card details";
    });
    article.append(toggle);
    if (hadFocus) toggle.focus();
  }

  // ---------------------------------------------------------------- feedback

  async function postFeedback(item, outcome, controls, kind, done, settle) {
    const call = lastCall;
    if (!call) return;
    controls.forEach((c) => (c.disabled = true));
    outcome.textContent = "Sending feedback…";
    const token = takeToken();
    let response;
    try {
      response = await fetch(`/cds-services/${encodeURIComponent(call.service)}/feedback`, {
        method: "POST",
        headers: headersWith(token, {}),
        body: JSON.stringify({ feedback: [item] }),
      });
    } catch (err) {
      response = null;
    }
    if (!response || !response.ok) {
      controls.forEach((c) => (c.disabled = false));
      outcome.textContent = !response
        ? "Feedback not sent: the service could not be reached."
        : response.status === 401 && authMode === "jwt"
          ? `Feedback refused: HTTP 401. Feedback needs its own bearer token, with aud ${audienceFor(call.service)}/feedback: paste one and try again.`
          : `Feedback refused: HTTP ${response.status}.`;
      return;
    }
    settle(kind, done);
    await refreshAudit(call.seq);
  }

  function accept(card, suggestion, outcome, controls, settle) {
    return postFeedback(
      {
        card: card.uuid,
        outcome: "accepted",
        acceptedSuggestions: [{ id: suggestion.uuid }],
        outcomeTimestamp: new Date().toISOString(),
      },
      outcome, controls, "accepted", `Accepted: ${suggestion.label}`, settle);
  }

  function override(card, reason, comment, outcome, controls, settle) {
    const overrideReason = {};
    if (reason) overrideReason.reason = { system: reason.system, code: reason.code, display: reason.display };
    if (comment) overrideReason.userComment = comment;
    const item = { card: card.uuid, outcome: "overridden", outcomeTimestamp: new Date().toISOString() };
    if (Object.keys(overrideReason).length) item.overrideReason = overrideReason;
    const why = reason ? `reason: ${reason.display || reason.code}` : "no reason given";
    return postFeedback(item, outcome, controls, "overridden",
      `Dismissed — ${why}${comment ? ` (comment: “${comment}”)` : ""}`, settle);
  }

  // ---------------------------------------------------------------- audit

  async function refreshAudit(seq) {
    if (!lastCall || lastCall.seq !== seq) return;
    const call = lastCall;
    if (call.signed) {
      // The service shows no signed call's record to this page: it cannot tell a pasted token
      // from a real client's, and must not show a real client's calls to anyone.
      $("audit").replaceChildren(muted("Not shown for a call sent with a token: this page " +
        "cannot tell it from a real client's call. An administrator reads it with itb-cds audit export."));
      return;
    }
    const response = await fetch(`/sandbox/api/audit/${encodeURIComponent(call.hookInstance)}`);
    if (callSeq !== seq) return; // a newer call owns the panel now
    const audit = $("audit");
    if (!response.ok) {
      audit.replaceChildren(muted(response.status === 404
        ? "No audit trail shown: the call is not about a fixture patient (or was not recorded)."
        : `Audit trail unavailable (HTTP ${response.status}).`));
      return;
    }
    const body = await response.json();
    if (callSeq !== seq) return;
    const parts = body.calls.map(auditCall);
    if (call.status === 200) parts.push(feedbackTable(body));
    audit.replaceChildren(...parts.map(softWrap));
  }

  function auditCall(call) {
    const rows = [
      ["hookInstance", call.hook_instance],
      ["Service", `${call.service_id} (${call.hook})`],
      ["HTTP status", String(call.http_status)],
      ["Duration", `${Math.round(call.duration_ms)} ms`],
      ["Cards", String((call.cards || []).length)],
      ["Prefetch supplied", (call.prefetch_supplied || []).join(", ") || "none"],
      ["Fetched from FHIR", (call.prefetch_fetched || []).join(", ") || "none"],
    ];
    if (call.prefetch_missing && call.prefetch_missing.length) rows.push(["Missing data", call.prefetch_missing.join(", ")]);
    if (call.error) rows.push(["Error", call.error]);
    return el("dl", { className: "audit__call" },
      ...rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]));
  }

  function feedbackTable(body) {
    const summaries = new Map();
    for (const call of body.calls) for (const c of call.cards || []) summaries.set(c.uuid, c.summary);
    const table = el("table", { className: "audit__feedback" },
      el("caption", { text: `Feedback rows (${body.feedback.length})` }),
      el("thead", {}, el("tr", {},
        ...["#", "Card", "Outcome", "Accepted suggestions", "Override reason", "Comment"]
          .map((h) => el("th", { scope: "col", text: h })))));
    const rows = el("tbody");
    for (const f of body.feedback) {
      rows.append(el("tr", { "data-outcome": f.outcome, "data-card-uuid": f.card_uuid },
        el("td", { text: String(f.seq) }),
        el("td", { text: summaries.get(f.card_uuid) || f.card_uuid }),
        el("td", { text: f.outcome }),
        el("td", { className: "ids", text: (f.accepted_suggestions || []).join(", ") }),
        el("td", { className: "reason", text: f.override_reason_display || f.override_reason_code || "" }),
        el("td", { text: f.user_comment || "" })));
    }
    table.append(rows);
    return el("div", { className: "table-scroll" }, labelCells(table));
  }

  // ---------------------------------------------------------------- start

  document.addEventListener("DOMContentLoaded", () => {
    authMode = document.body.dataset.authMode === "jwt" ? "jwt" : "off";
    publicBaseUrl = document.body.dataset.publicBaseUrl || window.location.origin;
    $("fixture").addEventListener("change", chooseFixture);
    $("service").addEventListener("change", showExpectations);
    $("request-form").addEventListener("submit", send);
    showTokenAudience($("service").value);
    loadFixtures().then(() => {
      document.body.dataset.ready = "true";
    });
  });
})();
