"""Put each code fence of trafilatura's Markdown on a line of its own.

trafilatura writes a ``<pre>`` block as a fenced code block, but when the block follows text in the same
element (a ``<dd>`` whose description runs straight into its example, as every entry of Postfix's
parameter page does) it glues the opening fence to the end of that text: ``... for example: ```...``.
A fence counts only at the start of a line, so a Markdown parser reads the example as prose and its
closing fence as the opening of a block that runs to the next fence: from the first such entry on,
prose and code swap places down the page. On Postfix's parameter page, 48 glued fences turned the
entries of hundreds of parameters into "code", kept verbatim with their ``**bold**`` marks and
escaped underscores (``tls\\_dane\\_digests``), so no term line named them and a question about one
found no page that defines it.

Written here because it is a repair of trafilatura's output (no option changes how it writes fences);
the rule is narrow: a line that ends in a fence after text that holds no unclosed code span.
"""

from __future__ import annotations

import re

# text (with whole `code` spans, but no open one), then a run of three or more backticks ending the line
_GLUED_FENCE = re.compile(r"^(?P<text>(?:[^`\n]|`[^`\n]+`)*?\S)[ \t]*(?P<fence>`{3,})[ \t]*$", re.MULTILINE)


def fences_on_own_lines(markdown: str) -> str:
    """``markdown`` with every fence that ends a line of text moved to the next line."""
    if "```" not in markdown:
        return markdown
    return _GLUED_FENCE.sub(lambda m: f"{m['text']}\n{m['fence']}", markdown)
