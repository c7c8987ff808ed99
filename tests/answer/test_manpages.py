"""Manual pages set in one <pre> (man2html, as Postfix's HTML manual and many sites publish them) are read
as headed paragraphs: no Markdown residue of their bold and italic, one paragraph per option."""

from __future__ import annotations

from groundglass.answer.definitions import terms_in
from groundglass.answer.entries import entries
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
        "-e queue_id\n- -f queue_id:\n- Request forced expiration for one message with the named queue ID in "
        "the named mail queue(s) (default: hold, incoming, active and deferred)." in paragraphs
    )  # -e, a line of its own, shares -f's description, as the manual sets them
    assert any("directories, with message files" in p for p in paragraphs)  # "mes-" + "sage" put back


# the shape of Postfix's postqueue.1.html: an option over its description, an option with its description
# on its line, a one-line item in the same columns, a list of status characters, bullets, a synopsis
OPTIONS = """<html><head><title>Postfix manual - postqueue(1)</title></head><body><pre>
<b>SYNOPSIS</b>
       <b>qshape</b> [<b>-s</b>] [<b>-p</b>] [<b>-m</b> <i>min</i><b>_</b><i>subdomains</i>]
               [<b>-b</b> <i>bucket</i><b>_</b><i>count</i>] [<b>-t</b> <i>bucket</i><b>_</b><i>time</i>]

<b>DESCRIPTION</b>
       The following options are recognized:

       <b>-f</b>     Flush the queue: attempt to deliver all queued mail, as the
              traditional "<b>sendmail -q</b>" command does.

       <b>-i</b> <i>queue</i><b>_</b><i>id</i>
              Schedule  immediate delivery of deferred mail with the specified
              queue ID.

              This feature is available with Postfix version 2.4 and later.

       <b>-p</b>     Produce a traditional sendmail-style queue listing.

              The queue ID string is followed by an optional status character:

              <b>*</b>      The  message  is in the <b>active</b> queue, i.e. the message is
                     selected for delivery.

              o      The message will be returned to the sender when the queue
                     manager attempts to deliver that message.
</pre></body></html>
"""


def test_an_option_over_its_description_is_a_term_with_its_description() -> None:
    doc = html_document(OPTIONS, "https://www.postfix.org/postqueue.1.html", "postqueue")
    assert terms_in(doc.text) == ["-f", "-i queue_id", "-p", "*"]
    assert dict(entries(doc.text)) == {
        "-f": 'Flush the queue: attempt to deliver all queued mail, as the traditional "sendmail -q" command '
        "does.",
        "-i queue_id": "Schedule immediate delivery of deferred mail with the specified queue ID.",
        "-p": "Produce a traditional sendmail-style queue listing.",  # one line, in -f's columns
        "*": "The message is in the active queue, i.e. the message is selected for delivery.",
    }
    lines = doc.text.splitlines()
    assert "This feature is available with Postfix version 2.4 and later." in lines
    # a bullet is no name, and a synopsis's usage line is no option
    assert any(line.startswith("o The message will be returned to the sender") for line in lines)
    assert "qshape [-s] [-p] [-m min_subdomains] [-b bucket_count] [-t bucket_time]" in lines


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
