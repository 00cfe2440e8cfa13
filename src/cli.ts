#!/usr/bin/env node
console.log("countersign: under construction");
