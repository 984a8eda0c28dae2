//! What Webex derives from a message's markdown: the people and groups it
//! mentions, the plain `text` (a mention shows its label, or the person's
//! first name when it has none) and the `html` the clients render.
//!
//! Only mentions are understood fully; of the rest of markdown only the
//! markers that would otherwise end up in the text (`**`, backticks) are
//! dropped, so commands such as `deploy nginx:1.25 to web` pass unchanged.

/// Who a mention points at, as written in the markdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MentionTarget<'a> {
    Email(&'a str),
    Id(&'a str),
}

/// A mentioned person the sandbox knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mentionable {
    pub(crate) id: String,
    pub(crate) first_name: String,
}

/// The derived fields of a markdown message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) text: String,
    pub(crate) html: String,
    pub(crate) mentioned_people: Vec<String>,
    pub(crate) mentioned_groups: Vec<String>,
}

/// Renders `markdown`, resolving mentions with `resolve`. A mention of
/// someone unknown stays plain text and mentions nobody, as in Webex.
pub(crate) fn render(
    markdown: &str,
    resolve: impl Fn(MentionTarget<'_>) -> Option<Mentionable>,
) -> Rendered {
    let mut out = Rendered::default();
    let mut rest = markdown;
    while let Some(start) = find_mention(rest) {
        let (before, from) = rest.split_at(start);
        push_plain(&mut out, before);
        let Some(end) = from.find('>') else {
            rest = from;
            break;
        };
        let inner = &from[2..end];
        let whole = &from[..=end];
        rest = &from[end + 1..];
        if inner == "all" {
            out.text.push_str("All");
            out.html
                .push_str("<spark-mention data-object-type=\"groupMention\" data-group-type=\"all\">All</spark-mention>");
            if !out.mentioned_groups.iter().any(|g| g == "all") {
                out.mentioned_groups.push("all".to_owned());
            }
            continue;
        }
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        let parsed = if let Some(email) = target.strip_prefix("personEmail:") {
            Some(MentionTarget::Email(email))
        } else {
            target.strip_prefix("personId:").map(MentionTarget::Id)
        };
        let Some(parsed) = parsed else {
            // Not a mention Webex understands: the reader sees it as typed.
            push_plain(&mut out, whole);
            continue;
        };
        match resolve(parsed) {
            Some(person) => {
                let shown = label.unwrap_or(&person.first_name);
                out.text.push_str(shown);
                out.html.push_str(&format!(
                    "<spark-mention data-object-type=\"person\" data-object-id=\"{}\">{}</spark-mention>",
                    escape(&person.id),
                    escape(shown)
                ));
                if !out.mentioned_people.contains(&person.id) {
                    out.mentioned_people.push(person.id);
                }
            }
            None => {
                let (MentionTarget::Email(raw) | MentionTarget::Id(raw)) = parsed;
                push_plain(&mut out, label.unwrap_or(raw));
            }
        }
    }
    push_plain(&mut out, rest);
    out.html = format!("<p>{}</p>", out.html);
    out
}

/// The next `<@` that is not backslash-escaped (`\\<@all>` is text).
fn find_mention(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("<@").map(|i| i + from) {
        let backslashes = s[..i].bytes().rev().take_while(|&b| b == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(i);
        }
        from = i + 2;
    }
    None
}

/// Markdown to plain text as Webex renders it: bold and code markers go,
/// and a backslash-escaped character (`\*`, `\_`, `\<`) stays as itself.
fn push_plain(out: &mut Rendered, markdown: &str) {
    let mut plain = String::with_capacity(markdown.len());
    let mut chars = markdown.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_punctuation) => {
                plain.extend(chars.next());
            }
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
            }
            '`' => {}
            c => plain.push(c),
        }
    }
    out.html.push_str(&escape(&plain));
    out.text.push_str(&plain);
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(target: MentionTarget<'_>) -> Option<Mentionable> {
        let (id, first_name) = match target {
            MentionTarget::Email("kube@webex.bot") | MentionTarget::Id("BOT") => ("BOT", "kube"),
            MentionTarget::Email("bob@example.com") | MentionTarget::Id("BOB") => ("BOB", "Bob"),
            _ => return None,
        };
        Some(Mentionable {
            id: id.to_owned(),
            first_name: first_name.to_owned(),
        })
    }

    #[test]
    fn a_labelled_mention_shows_its_label() {
        let r = render("<@personId:BOT|kube> scale web to 3", resolve);
        assert_eq!(r.text, "kube scale web to 3");
        assert_eq!(r.mentioned_people, ["BOT"]);
        assert_eq!(
            r.html,
            "<p><spark-mention data-object-type=\"person\" data-object-id=\"BOT\">kube</spark-mention> scale web to 3</p>"
        );
    }

    #[test]
    fn an_unlabelled_mention_shows_the_first_name() {
        let r = render("<@personEmail:kube@webex.bot> status web", resolve);
        assert_eq!(r.text, "kube status web");
        assert_eq!(r.mentioned_people, ["BOT"]);
    }

    #[test]
    fn several_mentions_are_listed_once_each_in_order() {
        let r = render(
            "<@personEmail:bob@example.com|Bob>, ask <@personId:BOT|kube> and <@personId:BOB|Bobby>",
            resolve,
        );
        assert_eq!(r.text, "Bob, ask kube and Bobby");
        assert_eq!(r.mentioned_people, ["BOB", "BOT"]);
    }

    #[test]
    fn unknown_people_and_broken_syntax_mention_nobody() {
        let r = render(
            "<@personEmail:nobody@example.com|Nobody> hi <@team x> <@personEmail:x",
            resolve,
        );
        assert_eq!(r.text, "Nobody hi <@team x> <@personEmail:x");
        assert!(r.mentioned_people.is_empty());
    }

    #[test]
    fn all_is_a_group_mention() {
        let r = render("<@all> deploy done", resolve);
        assert_eq!(r.text, "All deploy done");
        assert_eq!(r.mentioned_groups, ["all"]);
        assert!(r.mentioned_people.is_empty());
    }

    #[test]
    fn bold_and_code_markers_leave_the_text() {
        let r = render("**done**: `nginx:1.25` on web_1 <b>", resolve);
        assert_eq!(r.text, "done: nginx:1.25 on web_1 <b>");
        assert_eq!(r.html, "<p>done: nginx:1.25 on web_1 &lt;b&gt;</p>");
    }

    #[test]
    fn escaped_characters_stay_as_themselves() {
        let r = render(r"a \*\*b\*\* \<@all\> c\_d \\ e\-f", resolve);
        assert_eq!(r.text, r"a **b** <@all> c_d \ e-f");
    }
}
