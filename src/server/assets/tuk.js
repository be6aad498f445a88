/* tuk.js: progressive enhancement, written by the next commit. */
