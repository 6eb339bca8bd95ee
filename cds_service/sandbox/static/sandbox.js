// ITB CDS integration sandbox: sends CDS Hooks requests to the real service endpoints,
// renders the cards the way an EHR does, posts real feedback and shows the audit trail.
// Every value from a response is inserted as text; the one exception is card detail
// markdown, which the service renders with raw HTML disabled (POST /sandbox/api/markdown).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const fixtures = new Map();
  let lastCall = null; // {service, hookInstance}

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

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status" + (kind ? " status--" + kind : "");
  }

  // ---------------------------------------------------------------- fixtures

  async function loadFixtures() {
    const response = await fetch("/sandbox/api/fixtures");
    if (!response.ok) return;
    const body = await response.json();
    for (const f of body.fixtures) fixtures.set(f.id, f);
  }

  async function chooseFixture() {
    const id = $("fixture").value;
    const story = $("story");
    if (!id) {
      story.hidden = true;
      return;
    }
    const f = fixtures.get(id);
    if (f) {
      $("story-title").textContent = f.title;
      $("story-text").textContent = f.story;
      $("story-expected").textContent = f.expected.length
        ? f.expected.map((e) => `${e.rule} ${e.outcome} (${e.indicator})`).join("; ")
        : "none";
      story.hidden = false;
      $("service").value = f.service;
    }
    const response = await fetch(`/sandbox/api/fixtures/${encodeURIComponent(id)}/request`);
    if (!response.ok) {
      setStatus(`Could not load fixture ${id} (HTTP ${response.status}).`, "error");
      return;
    }
    $("request-json").value = pretty(await response.json());
  }

  // ---------------------------------------------------------------- sending

  async function send(event) {
    event.preventDefault();
    const option = $("service").selectedOptions[0];
    const service = option.value;
    let request;
    try {
      request = JSON.parse($("request-json").value);
    } catch (err) {
      setStatus(`The request is not valid JSON: ${err.message}`, "error");
      $("request-json").focus();
      return;
    }
    if (request === null || typeof request !== "object" || Array.isArray(request)) {
      setStatus("The request must be a JSON object.", "error");
      return;
    }
    request.hook = option.dataset.hook;
    if ($("fresh-instance").checked || !request.hookInstance) request.hookInstance = uuid4();
    $("request-json").value = pretty(request);
    $("raw-request").textContent = `POST /cds-services/${service}\n\n${pretty(request)}`;

    $("send").disabled = true;
    setStatus("Sending…");
    $("cards").replaceChildren();
    $("audit").replaceChildren(el("p", { className: "muted", text: "Waiting for the call." }));
    const started = performance.now();
    let response;
    let text;
    try {
      response = await fetch(`/cds-services/${encodeURIComponent(service)}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(request),
      });
      text = await response.text();
    } catch (err) {
      setStatus(`The service could not be reached: ${err.message}`, "error");
      $("send").disabled = false;
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
    if (!response.ok || !body || !Array.isArray(body.cards)) {
      const issue = body && body.issue && body.issue[0] && body.issue[0].diagnostics;
      setStatus(`HTTP ${response.status} in ${elapsed} ms${issue ? ": " + issue : ""}`, "error");
      return;
    }
    lastCall = { service, hookInstance: request.hookInstance };
    const count = body.cards.length;
    setStatus(
      `HTTP ${response.status} in ${elapsed} ms: ${count} card${count === 1 ? "" : "s"}.`,
      "ok",
    );
    await renderCards(body.cards);
    await refreshAudit();
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

  async function renderCards(cards) {
    const container = $("cards");
    if (!cards.length) {
      container.replaceChildren(el("p", { className: "muted", text: "No cards for this chart." }));
      return;
    }
    const details = await renderDetails(cards);
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
      el("h3", { className: "card__summary", text: card.summary }),
    );
    if (card.detail) {
      const detail = el("div", { className: "card__detail" });
      if (typeof detailHtml === "string") detail.innerHTML = detailHtml; // escaped server-side
      else detail.textContent = card.detail;
      article.append(detail);
    }
    if (card.source) {
      const url = card.source.url && safeUrl(card.source.url);
      const label = url
        ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: card.source.label })
        : el("span", { text: card.source.label });
      article.append(el("p", { className: "card__source" }, "Source: ", label));
    }
    const outcome = el("p", { className: "card__outcome", role: "status" });
    const controls = [];

    if (card.suggestions && card.suggestions.length) {
      const group = el("div", { className: "card__suggestions", role: "group", "aria-label": "Suggestions" });
      for (const s of card.suggestions) {
        const button = el("button", {
          type: "button",
          className: s.isRecommended ? "suggestion suggestion--recommended" : "suggestion",
          "data-suggestion-uuid": s.uuid,
          text: s.label + (s.isRecommended ? " (recommended)" : ""),
        });
        button.addEventListener("click", () =>
          accept(card, s, outcome, controls));
        controls.push(button);
        group.append(button);
      }
      article.append(group);
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
      article.append(list);
    }
    article.append(renderDismiss(card, outcome, controls), outcome);
    return article;
  }

  function renderDismiss(card, outcome, controls) {
    const reasons = card.overrideReasons || [];
    const base = `dismiss-${card.uuid}`;
    const form = el("form", { className: "card__dismiss" });
    const select = el("select", { id: `${base}-reason` },
      el("option", { value: "", text: reasons.length ? "Choose a reason…" : "No reason" }),
      ...reasons.map((r, i) => el("option", { value: String(i), text: r.display || r.code })));
    const comment = el("input", { id: `${base}-comment`, type: "text", maxlength: "500" });
    const button = el("button", { type: "submit", className: "dismiss", text: "Dismiss card" });
    form.append(
      el("label", { for: select.id, text: "Override reason" }), select,
      el("label", { for: comment.id, text: "Comment (optional)" }), comment,
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
      override(card, reason, comment.value.trim(), outcome, controls);
    });
    return form;
  }

  // ---------------------------------------------------------------- feedback

  async function postFeedback(item, outcome, controls, done) {
    if (!lastCall) return;
    controls.forEach((c) => (c.disabled = true));
    outcome.textContent = "Sending feedback…";
    const response = await fetch(`/cds-services/${encodeURIComponent(lastCall.service)}/feedback`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ feedback: [item] }),
    });
    if (!response.ok) {
      controls.forEach((c) => (c.disabled = false));
      outcome.textContent = `Feedback refused: HTTP ${response.status}.`;
      return;
    }
    outcome.textContent = done;
    await refreshAudit();
  }

  function accept(card, suggestion, outcome, controls) {
    return postFeedback(
      {
        card: card.uuid,
        outcome: "accepted",
        acceptedSuggestions: [{ id: suggestion.uuid }],
        outcomeTimestamp: new Date().toISOString(),
      },
      outcome, controls, `Accepted: ${suggestion.label}`);
  }

  function override(card, reason, comment, outcome, controls) {
    const overrideReason = {};
    if (reason) overrideReason.reason = { system: reason.system, code: reason.code, display: reason.display };
    if (comment) overrideReason.userComment = comment;
    const item = { card: card.uuid, outcome: "overridden", outcomeTimestamp: new Date().toISOString() };
    if (Object.keys(overrideReason).length) item.overrideReason = overrideReason;
    return postFeedback(item, outcome, controls,
      `Dismissed${reason ? ": " + (reason.display || reason.code) : ""}`);
  }

  // ---------------------------------------------------------------- audit

  async function refreshAudit() {
    const audit = $("audit");
    if (!lastCall) return;
    const response = await fetch(`/sandbox/api/audit/${encodeURIComponent(lastCall.hookInstance)}`);
    if (!response.ok) {
      audit.replaceChildren(el("p", {
        className: "muted",
        text: response.status === 404
          ? "No audit trail shown: the call is not about a fixture patient (or was not recorded)."
          : `Audit trail unavailable (HTTP ${response.status}).`,
      }));
      return;
    }
    const body = await response.json();
    const parts = [];
    for (const call of body.calls) {
      parts.push(el("dl", { className: "audit__call" },
        el("dt", { text: "hookInstance" }), el("dd", { text: call.hook_instance }),
        el("dt", { text: "Service" }), el("dd", { text: `${call.service_id} (${call.hook})` }),
        el("dt", { text: "HTTP status" }), el("dd", { text: String(call.http_status) }),
        el("dt", { text: "Duration" }), el("dd", { text: `${Math.round(call.duration_ms)} ms` }),
        el("dt", { text: "Cards" }), el("dd", { text: String((call.cards || []).length) }),
        el("dt", { text: "Prefetch supplied" }), el("dd", { text: (call.prefetch_supplied || []).join(", ") || "none" }),
        el("dt", { text: "Fetched from FHIR" }), el("dd", { text: (call.prefetch_fetched || []).join(", ") || "none" }),
      ));
    }
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
        el("td", { text: (f.accepted_suggestions || []).join(", ") }),
        el("td", { className: "reason", text: f.override_reason_display || f.override_reason_code || "" }),
        el("td", { text: f.user_comment || "" })));
    }
    table.append(rows);
    parts.push(table);
    audit.replaceChildren(...parts);
  }

  // ---------------------------------------------------------------- start

  document.addEventListener("DOMContentLoaded", () => {
    $("fixture").addEventListener("change", chooseFixture);
    $("request-form").addEventListener("submit", send);
    loadFixtures().then(() => {
      document.body.dataset.ready = "true";
    });
  });
})();
