package testdb

// TemplateName is the name of the migrations' template.
var TemplateName = templateName
