"""The suite page's inline style and script (kept inline so the page needs no network).

The script sorts the claims table by a clicked column (numbers numerically), filters it by
verdict and by cited paper, counts the rows shown (the page's query string can preset all
three: ?verdict=unexpected&paper=telgarsky2016&sort=4, for links and for the browser test),
and records on every figure whether it loaded (`data-loaded`, `data-natural-width`) so a
headless browser's DOM dump shows it.
"""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left; }
thead th { background: #f0f0f0; cursor: pointer; }
tfoot td { font-weight: bold; }
.counts { display: flex; gap: 1em; margin-bottom: 0.5em; }
.count { padding: 4px 10px; border-radius: 4px; background: #eee; }
.count span { font-size: 1.4em; font-weight: bold; }
tr.held td:last-child, .count.held { background: #dff0d8; }
tr.expected-negative td:last-child, .count.expected-negative { background: #fcf8e3; }
tr.unexpected td:last-child, .count.unexpected, .count.failed { background: #f2dede; }
.figures img { max-width: 640px; border: 1px solid #ddd; }
figure { display: inline-block; margin: 0 1em 1em 0; }
.receipt th { background: #f7f7f7; cursor: default; }
pre.traceback { background: #f7f7f7; padding: 0.5em; overflow-x: auto; }
small { color: #666; }
"""

SCRIPT = """
(function () {
  var table = document.getElementById('claims');
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var verdict = document.getElementById('verdict-filter');
  var paper = document.getElementById('paper-filter');
  function applyFilters() {
    var shown = 0;
    rows.forEach(function (row) {
      var papers = row.getAttribute('data-papers').split(' ');
      var keep = (!verdict.value || row.getAttribute('data-verdict') === verdict.value) &&
                 (!paper.value || papers.indexOf(paper.value) >= 0);
      row.style.display = keep ? '' : 'none';
      if (keep) { shown += 1; }
    });
    document.getElementById('shown-count').textContent = shown;
  }
  function sortBy(column) {
    var ascending = table.getAttribute('data-sorted') !== column + ':asc';
    rows.sort(function (a, b) {
      var x = a.cells[column].getAttribute('data-sort');
      var y = b.cells[column].getAttribute('data-sort');
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    table.setAttribute('data-sorted', column + (ascending ? ':asc' : ':desc'));
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    th.addEventListener('click', function () { sortBy(th.getAttribute('data-column')); });
  });
  verdict.addEventListener('change', applyFilters);
  paper.addEventListener('change', applyFilters);
  var params = new URLSearchParams(window.location.search);
  if (params.get('verdict')) { verdict.value = params.get('verdict'); }
  if (params.get('paper')) { paper.value = params.get('paper'); }
  if (params.get('sort')) { sortBy(params.get('sort')); }
  applyFilters();
  function markImages() {
    var loaded = 0, images = document.images;
    Array.prototype.forEach.call(images, function (img) {
      var ok = img.complete && img.naturalWidth > 0;
      img.setAttribute('data-loaded', ok ? 'yes' : 'no');
      img.setAttribute('data-natural-width', img.naturalWidth);
      if (ok) { loaded += 1; }
    });
    document.body.setAttribute('data-images-loaded', loaded + '/' + images.length);
  }
  window.addEventListener('load', markImages);
  markImages();
  document.body.setAttribute('data-script', 'ran');
})();
"""
