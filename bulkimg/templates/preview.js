"use strict";
// The run preview's renderer. Cards come from the JSON block; every value reaches the DOM through
// textContent or setAttribute, never as markup. Cards are rendered PAGE at a time as the reader
// scrolls, so a catalog of 20,000 groups opens and filters quickly.

// The cards are a JSON array, gzip-compressed and base64-encoded (no network: Blob and Response).
async function loadCards() {
  const text = atob(document.getElementById("cards-data").textContent.trim());
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const json = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(json).text());
}

const PHASES = new Map([
  ["build", "left out by the build"],
  ["product_set", "product update failed"],
  ["variant_media", "variant images failed"],
]);

function showCards(cards) {
  const PAGE = 50;
  const list = document.getElementById("cards");
  const more = document.getElementById("more");
  const moreButton = document.getElementById("more-button");
  const shown = document.getElementById("shown");
  const search = document.getElementById("search");
  const buttons = Array.from(document.querySelectorAll("button[data-filter]"));
  let filter = "all";
  let matches = cards;
  let rendered = 0;
  const observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    if (entries.some(function (e) { return e.isIntersecting; }) && rendered < matches.length) {
      renderMore();
    }
  }, { rootMargin: "1200px" }) : null;

  for (const card of cards) {
    const words = [card.group_id];
    for (const v of card.variants) words.push(v.sku, v.image_sku);
    for (const m of card.missing) words.push(m.sku, m.image_sku);
    for (const i of card.images) words.push(i.image_sku);
    card.search = words.join("\n").toLowerCase();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Only URLs the renderer made may become a src: presigned http(s) links or data: JPEGs.
  function safeSrc(src) {
    return typeof src === "string" &&
      (src.startsWith("https://") || src.startsWith("http://") ||
       src.startsWith("data:image/jpeg;base64,"));
  }

  function picture(image, className) {
    if (!image || !safeSrc(image.src)) {
      return el("div", className + " placeholder", image ? "no preview" : "");
    }
    const img = el("img", className);
    img.setAttribute("loading", "lazy");
    img.setAttribute("decoding", "async");
    img.setAttribute("referrerpolicy", "no-referrer");
    img.setAttribute("alt", image.alt);
    img.setAttribute("src", image.src);
    img.addEventListener("error", function () {
      img.replaceWith(el("div", className + " placeholder", "not loaded (link expired?)"));
    });
    return img;
  }

  function badge(kind, value, text) {
    return el("span", "badge " + kind + "-" + value, text || value);
  }

  const ACTIONS = {
    create: "product created",
    update: "images changed",
    unchanged: "images already there",
    conflict: "skipped: handle and SKUs disagree",
    not_created: "not created (--no-create)",
  };

  const SHOP_ACTIONS = {
    create: "creates the product",
    update: "changes images",
    unchanged: "nothing to send",
    conflict: "skipped: handle and SKUs disagree",
    not_created: "not created (--no-create)",
  };

  const SHOP_LABELS = {
    adopted: "adopt", uploaded: "upload", replaced: "replace", removed: "remove",
    kept_foreign: "foreign kept", variant_images_set: "variant images set",
    variant_images_swapped: "variant images swapped", variant_images_kept: "variant images kept",
  };

  function againstShop(shop) {
    const line = el("p", "against-shop");
    line.append(el("strong", null, "next submit: "));
    line.append(badge("shop", shop.action, SHOP_ACTIONS[shop.action] || null));
    line.append(el("span", "found-by", shop.match === "new" ? "no such product yet" : "found by " + shop.match));
    for (const name of Object.keys(SHOP_LABELS)) {
      if (shop.counts[name]) line.append(el("span", "shop-count", SHOP_LABELS[name] + " " + shop.counts[name]));
    }
    if (shop.detail) line.append(el("span", "detail", shop.detail));
    return line;
  }

  function header(card) {
    const head = el("header", "card-head");
    head.append(el("h2", "group-id", card.group_id));
    head.append(el("span", "handle", card.handle));
    head.append(el("span", "title", card.title));
    head.append(badge("status", card.status, card.status === "unchanged" ? "no change" : null));
    if (card.outcome) head.append(badge("outcome", card.outcome));
    if (card.action) head.append(badge("action", card.action, ACTIONS[card.action] || null));
    if (card.product_id) head.append(el("span", "product-id", card.product_id));
    if (card.deferred_reason) head.append(el("p", "deferred", card.deferred_reason));
    return head;
  }

  function imageTile(card, image) {
    const tile = el("li", "tile" + (image.position === 1 ? " featured" : ""));
    tile.dataset.position = String(image.position);
    tile.append(picture(image, "thumb"));
    const caption = el("div", "caption");
    const number = el("span", "number", image.position + " \u00b7 " + image.label);
    caption.append(number);
    if (image.position === 1) caption.append(el("span", "featured-mark", "\u2605 featured"));
    if (image.media_status) caption.append(badge("media", image.media_status));
    caption.append(el("span", "key", image.s3_key));
    caption.append(el("span", "size", image.width + " \u00d7 " + image.height + " px"));
    caption.append(el("span", "alt", "alt: " + image.alt));
    const skus = card.variants.filter(function (v) { return v.image === image.position; })
      .map(function (v) { return v.sku; });
    if (skus.length) caption.append(el("span", "shown-by", "variants: " + skus.join(", ")));
    tile.append(caption);
    return tile;
  }

  function missingTiles(card) {
    const tiles = [];
    const seen = new Set();
    for (const m of card.missing) {
      const key = m.image_sku + "\n" + m.reason;
      if (seen.has(key)) continue;
      seen.add(key);
      const tile = el("li", "tile missing");
      tile.append(el("div", "thumb placeholder", "missing"));
      const caption = el("div", "caption");
      caption.append(el("span", "number", m.image_sku ? "Image_SKU " + m.image_sku : "no Image_SKU"));
      caption.append(el("span", "reason", m.reason));
      if (m.detail) caption.append(el("span", "detail", m.detail));
      tile.append(caption);
      tiles.push(tile);
    }
    return tiles;
  }

  function highlight(article, position, on) {
    const tile = article.querySelector('li.tile[data-position="' + Number(position) + '"]');
    if (tile) tile.classList.toggle("highlight", on);
  }

  function variantRow(card, article, variant) {
    const row = el("li", "variant");
    row.setAttribute("tabindex", "0");
    row.append(el("span", "sku", "SKU " + variant.sku));
    row.append(el("span", "image-sku", "Image_SKU " + (variant.image_sku || "\u2014")));
    if (variant.image) {
      const image = card.images[variant.image - 1];
      const shows = el("span", "shows highlight");
      shows.append(picture(image, "mini"));
      shows.append(el("span", null, "shows image " + variant.image + " of " + card.images.length));
      row.append(shows);
      const on = function () { highlight(article, variant.image, true); };
      const off = function () { highlight(article, variant.image, false); };
      row.addEventListener("mouseenter", on);
      row.addEventListener("focus", on);
      row.addEventListener("mouseleave", off);
      row.addEventListener("blur", off);
    } else {
      const why = card.missing.find(function (m) { return m.sku === variant.sku; });
      row.append(el("span", "shows none", "no image" + (why ? ": " + why.reason : "")));
    }
    if (variant.submitted) {
      let result = "no image attached";
      if (variant.attached === variant.image && variant.attached) result = "\u2713 attached";
      else if (variant.attached) result = "attached image " + variant.attached;
      else if (variant.attached === 0) result = "attached another file";
      row.append(el("span", "attached", result));
    }
    return row;
  }

  function failures(card) {
    const box = el("div", "failures");
    for (const failure of card.failures) {
      const item = el("div", "failure");
      item.append(el("strong", null, PHASES.get(failure.phase) || failure.phase + " failed"));
      item.append(el("span", failure.retryable ? "retry yes" : "retry no",
        failure.retryable ? "retrying may help" : "retrying will not help: fix the input"));
      const errors = el("ul", "errors");
      for (const e of failure.errors) {
        const text = [e.code, e.field].filter(Boolean).join(" ");
        errors.append(el("li", null, (text ? text + ": " : "") + e.message));
      }
      item.append(errors);
      box.append(item);
    }
    return box;
  }

  function rejected(card) {
    const details = el("details", "rejected");
    const count = card.rejected.length;
    details.append(el("summary", null, count + (count === 1 ? " file" : " files") + " in S3 not used"));
    const items = el("ul");
    for (const r of card.rejected) {
      const item = el("li");
      item.append(el("span", "key", r.s3_key));
      item.append(el("span", "reason", r.reason + (r.detail ? " (" + r.detail + ")" : "")));
      items.append(item);
    }
    details.append(items);
    return details;
  }

  function renderCard(card) {
    const article = el("article", "card" + (card.outcome ? " is-" + card.outcome : ""));
    article.dataset.group = card.group_id;
    article.append(header(card));
    if (card.against_shop) article.append(againstShop(card.against_shop));
    if (card.failures.length) article.append(failures(card));
    const images = el("ol", "images");
    images.setAttribute("aria-label", "images in upload order");
    for (const image of card.images) images.append(imageTile(card, image));
    for (const tile of missingTiles(card)) images.append(tile);
    if (!images.childElementCount) images.append(el("li", "tile empty", "no images"));
    article.append(images);
    const variants = el("ul", "variants");
    for (const v of card.variants) variants.append(variantRow(card, article, v));
    article.append(variants);
    if (card.rejected.length) article.append(rejected(card));
    return article;
  }

  function renderMore() {
    const end = Math.min(rendered + PAGE, matches.length);
    const batch = document.createDocumentFragment();
    for (; rendered < end; rendered++) batch.append(renderCard(matches[rendered]));
    list.append(batch);
    if (observer) {  // re-arm: it fires again if the sentinel is still in view
      observer.unobserve(more);
      observer.observe(more);
    }
    moreButton.hidden = rendered >= matches.length;
    shown.textContent = "showing " + rendered + " of " + matches.length +
      (matches.length === cards.length ? " groups" : " matching groups");
  }

  function apply() {
    const query = search.value.trim().toLowerCase();
    matches = cards.filter(function (card) {
      return card.filters.includes(filter) && (!query || card.search.includes(query));
    });
    rendered = 0;
    list.replaceChildren();
    if (!matches.length) list.append(el("p", "empty", "No group matches."));
    renderMore();
  }

  for (const button of buttons) {
    button.addEventListener("click", function () {
      filter = button.dataset.filter;
      for (const b of buttons) b.setAttribute("aria-pressed", String(b === button));
      apply();
    });
  }
  search.addEventListener("input", apply);
  moreButton.addEventListener("click", renderMore);
  apply();
  document.body.dataset.ready = "true";
}

loadCards().then(showCards, function (error) {
  document.getElementById("shown").textContent = "could not read the cards: " + error;
});
