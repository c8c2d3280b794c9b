// faxline web fax center: uploads with drag and drop, the send preview, live progress.
// Every page works without this file; it only adds to them.
"use strict";

function setupSend() {
  const form = document.getElementById("send-form");
  if (!form) return;
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const preview = document.getElementById("preview");
  const count = document.getElementById("preview-count");
  const thumbs = document.getElementById("thumbs");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const all = new DataTransfer();
    for (const f of input.files) all.items.add(f);
    for (const f of e.dataTransfer.files) all.items.add(f);
    input.files = all.files;
    input.dispatchEvent(new Event("change"));
  });
  const more = document.getElementById("preview-more");
  const coverFields = ["cover_to", "cover_from", "cover_subject", "cover_notes"];
  let asked = 0;
  const show = async () => {
    // The pages as they will be sent: the files, and the cover page when one is filled in.
    const mine = ++asked;
    thumbs.replaceChildren();
    more.hidden = true;
    if (!input.files.length) { preview.hidden = true; return; }
    preview.hidden = false;
    count.className = "";
    count.textContent = "Preparing the preview…";
    const data = new FormData();
    for (const name of ["csrf_token", "extension", "recipients", ...coverFields]) {
      const field = form.elements[name];
      if (field) data.append(name, field.value);
    }
    for (const f of input.files) data.append("files", f);
    const answer = await fetch("/send/preview", { method: "POST", body: data });
    const body = await answer.json();
    if (mine !== asked) return; // a newer preview is on its way
    if (!answer.ok) { count.textContent = body.error.message; count.className = "error"; return; }
    count.textContent = body.pages === 1 ? "1 page will be sent." : body.pages + " pages will be sent.";
    if (body.cover) count.textContent += " The first is the cover page.";
    if (body.pages > body.images.length) {
      // A long fax: only the first pages are drawn here, not hundreds of thumbnails.
      more.textContent = "The first " + body.images.length + " pages are shown, and " +
        (body.pages - body.images.length) + " more are not.";
      more.hidden = false;
    }
    body.images.forEach((src, i) => {
      const li = document.createElement("li");
      const img = document.createElement("img");
      img.src = src;
      img.alt = "Page " + (i + 1) + " as it will be sent";
      li.append(img);
      thumbs.append(li);
    });
  };
  input.addEventListener("change", show);
  for (const name of coverFields) {
    const field = form.elements[name];
    if (field) field.addEventListener("change", show);
  }
}

function setupFax() {
  const fax = document.querySelector(".fax[data-live=yes]");
  if (!fax || !window.EventSource) return;
  const events = new EventSource("/faxes/" + fax.dataset.uid + "/events");
  events.addEventListener("fax", (e) => {
    const view = JSON.parse(e.data);
    const status = document.getElementById("fax-status");
    if (status) status.textContent = view.statusText;
    for (const d of view.deliveries || []) {
      const row = document.querySelector('tr[data-recipient="' + CSS.escape(d.recipient) + '"]');
      if (!row) continue;
      row.querySelector(".status").textContent =
        d.statusText + (d.reasonText ? ": " + d.reasonText : "");
      row.querySelector(".sent").textContent = (d.pagesSent || 0) + " of " + view.pages;
      row.querySelector(".next").textContent = (d.nextAttemptAt || "").slice(0, 19).replace("T", " ");
    }
    const done = (view.deliveries || []).every((d) => ["delivered", "failed", "cancelled"].includes(d.status));
    if (done) {
      events.close();
      refresh(fax).then(setupZoom);
    }
  });
}

async function refresh(part) {
  // Swap in the freshly rendered part of this page (attempts, actions) without reloading.
  const answer = await fetch(location.href, { headers: { Accept: "text/html" } });
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  const fresh = page.querySelector(part.tagName.toLowerCase() + "." + part.className.split(" ")[0]);
  if (!fresh) return;
  // A keyboard user on a zoom link keeps their place when the part is swapped.
  const focused = document.activeElement;
  const zoom = focused && part.contains(focused) ? focused.dataset.zoom : undefined;
  part.innerHTML = fresh.innerHTML;
  if (zoom) part.querySelector('nav.zoom a[data-zoom="' + zoom + '"]')?.focus();
}

function setupInbox() {
  const box = document.querySelector("[data-inbox]");
  if (!box || !window.EventSource) return;
  let first = true;
  const events = new EventSource("/inbox/events?extension=" + encodeURIComponent(box.dataset.inbox));
  events.addEventListener("newest", async () => {
    if (first) { first = false; return; }
    // A new fax arrived: fetch the list again and swap it in, announcing it.
    const answer = await fetch(location.href, { headers: { Accept: "text/html" } });
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = page.getElementById("faxes");
    if (!fresh) return;
    box.innerHTML = fresh.innerHTML;
    document.getElementById("inbox-news").textContent = "A new fax has arrived.";
  });
}

function setupZoom() {
  // The zoom links work without this (the server renders the page at that zoom); here they
  // switch in place: the class that sizes the images, and the image width to ask for.
  const zoom = document.querySelector("nav.zoom");
  const pages = document.getElementById("pages");
  if (!zoom || !pages) return;
  const links = zoom.querySelectorAll("a[data-zoom]");
  const choose = (link) => {
    for (const other of links) other.removeAttribute("aria-current");
    link.setAttribute("aria-current", "true");
    pages.className = "pages zoom-" + link.dataset.zoom;
    for (const img of pages.querySelectorAll("img[data-page]")) {
      const url = new URL(img.src, location.href);
      if (link.dataset.width === "860") url.searchParams.delete("width");
      else url.searchParams.set("width", link.dataset.width);
      if (url.href !== img.src) img.src = url.href;
    }
    const url = new URL(location.href);
    url.searchParams.set("zoom", link.dataset.zoom);
    history.replaceState(null, "", url.pathname + url.search);
    document.getElementById("zoom-news").textContent = "Pages shown at " + link.textContent.trim();
  };
  for (const link of links) {
    link.addEventListener("click", (e) => { e.preventDefault(); choose(link); });
  }
}

document.addEventListener("DOMContentLoaded", () => { setupSend(); setupFax(); setupZoom(); setupInbox(); });
