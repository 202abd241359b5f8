-- lang: the language the account's mail is written in, the site's
-- language the account was last used in (a code of the site's seven
-- languages); NULL until the account uses a page, and mail then goes
-- out in English.
ALTER TABLE accounts ADD COLUMN lang TEXT CHECK (lang IN ('en', 'ru', 'de', 'fr', 'es', 'tr', 'zh'));

-- A support ticket's lang: the language of the page it was written on,
-- for the notices of the operator's replies when the ticket has no
-- account (or its account no language).
ALTER TABLE support_tickets ADD COLUMN lang TEXT CHECK (lang IN ('en', 'ru', 'de', 'fr', 'es', 'tr', 'zh'));
