"""Manual pages set in one <pre> (man2html, as Postfix's HTML manual and many sites publish them) are read
as headed paragraphs: no Markdown residue of their bold and italic, one paragraph per option."""

from __future__ import annotations

from groundglass.answer.index.extract import html_document
from groundglass.answer.index.html_manpages import joined

# the shape of Postfix's postsuper.1.html: names in <b>, arguments in <i>, a name set in pieces of both
PAGE = """<!doctype html public "-//W3C//DTD HTML 4.01 Transitional//EN">
<html> <head><title> Postfix manual - postsuper(1) </title></head> <body> <pre>
POSTSUPER(1)                                                      POSTSUPER(1)

<b>NAME</b>
       postsuper - Postfix superintendent

<b>SYNOPSIS</b>
       <b>postsuper</b> [<b>-psSv</b>]
               [<b>-c</b> <i>config</i><b>_</b><i>dir</i>] [<b>-d</b> <i>queue</i><b>_</b><i>id</i>]
               [<b>-e</b> <i>queue</i><b>_</b><i>id</i>] [<b>-f</b> <i>queue</i><b>_</b><i>id</i>]

<b>DESCRIPTION</b>
       The  <a href="p.html"><b>postsuper</b>(1)</a>  command  does maintenance jobs on the Postfix queue.
       Use  of  the  command  is  restricted  to  the  superuser.

       By default, <a href="p.html"><b>postsuper</b>(1)</a> performs the operations asked with the  <b>-s</b>
       and  <b>-p</b>  command-line  options  on all Postfix queue directories, with mes-
       sage files and log files.

       <b>-e</b> <i>queue</i><b>_</b><i>id</i>

       <b>-f</b> <i>queue</i><b>_</b><i>id</i>
              Request forced expiration for one message with the named queue  ID
              in the named mail queue(s) (default: <b>hold</b>, <b>incoming</b>, <b>active</b> and
              <b>deferred</b>).

<b>SEE ALSO</b>
       <a href="postqueue.1.html">postqueue(1)</a>, unprivileged queue operations
</pre> </body> </html>
"""


def test_a_manual_page_in_one_pre_is_headed_paragraphs_without_markdown_residue() -> None:
    doc = html_document(PAGE, "https://www.postfix.org/postsuper.1.html", "postsuper")
    assert [s.heading for s in doc.sections if s.heading] == ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"]
    paragraphs = doc.text.split("\n\n")
    assert "[-c config_dir] [-d queue_id]" in doc.text  # not "config**_dir] [-d** queue**_id"
    assert "**" not in doc.text and "\\_" not in doc.text
    assert (
        "-f queue_id Request forced expiration for one message with the named queue ID in the named mail "
        "queue(s) (default: hold, incoming, active and deferred)." in paragraphs
    )
    assert any("directories, with message files" in p for p in paragraphs)  # "mes-" + "sage" put back


def test_a_pre_without_emphasis_stays_code() -> None:
    page = (
        "<html><body><h1>Examples</h1><p>Put this in main.cf and reload the service to apply it at once:</p>"
        "<pre>/etc/postfix/main.cf:\n    smtpd_tls_security_level = may\n    smtpd_tls_auth_only = yes\n"
        "</pre><p>The server then offers STARTTLS to every client that connects to it.</p></body></html>"
    )
    doc = html_document(page, "https://example.org/tls", "tls")
    assert "/etc/postfix/main.cf:\n    smtpd_tls_security_level = may\n" in doc.text


def test_joined_lines_put_a_hyphenated_word_back_together_but_keep_a_dash() -> None:
    assert joined(["  with mes-", "     sage files  and", "  logs"]) == "with message files and logs"
    assert joined(["use the -", "  option"]) == "use the - option"
    assert joined(["IPv4-", "only hosts"]) == "IPv4-only hosts"
