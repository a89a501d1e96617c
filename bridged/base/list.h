/* A minimal intrusive doubly-linked list (header-only).
 *
 * A list is a struct list_node head whose prev/next point to itself when
 * empty; an element embeds a struct list_node and is found back with
 * list_entry. Nodes are owned by whoever owns the element. */
#ifndef DOKU_BASE_LIST_H
#define DOKU_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

#define list_entry(node, type, member) ((type *)(void *)((char *)(node) - offsetof(type, member)))

static inline void list_init(struct list_node *head)
{
	head->prev = head;
	head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

/* Whether n is linked into some list (a node is unlinked after list_node_init or list_del). */
static inline bool list_linked(const struct list_node *n)
{
	return n->next != NULL && n->next != n;
}

static inline void list_node_init(struct list_node *n)
{
	n->prev = n;
	n->next = n;
}

static inline void list_add_tail(struct list_node *head, struct list_node *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_node_init(n);
}

/* Move every element of from to the empty head to (to's order kept); from is left empty. */
static inline void list_move_all(struct list_node *from, struct list_node *to)
{
	list_init(to);
	if (list_empty(from))
		return;
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	list_init(from);
}

#endif
