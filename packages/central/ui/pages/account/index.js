// The account and developer pages (H3b fills this in). `routes`: hash path -> component;
// `nav`: links shown to every signed-in user, [{ href: '#/account/...', label: '...' }].
export const routes = {};
export const nav = [];
